package results

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/internal/golden"
	"github.com/zoo-ml/zoo/internal/pickle"
)

// The opcodes WritePickle emits, for the disassembler.
const (
	opProto      = pickle.OpProto
	opEmptyList  = pickle.OpEmptyList
	opBinPut     = pickle.OpBinPut
	opLongBinPut = pickle.OpLongBinPut
	opMark       = pickle.OpMark
	opAppend     = pickle.OpAppend
	opAppends    = pickle.OpAppends
	opBinUnicode = pickle.OpBinUnicode
	opBinFloat   = pickle.OpBinFloat
	opBinInt1    = pickle.OpBinInt1
	opBinInt2    = pickle.OpBinInt2
	opBinInt     = pickle.OpBinInt
	opLong1      = pickle.OpLong1
	opTuple3     = pickle.OpTuple3
	opStop       = pickle.OpStop
)

// goldenRows exercise every opcode WritePickle emits: one-item lists
// (APPEND), empty lists, each int width, a multi-byte id.
var goldenRows = []InferRow{
	{VideoID: "abseiling/0347Zf.mp4", Scores: []float32{0.75, 0.125, 1e-7}, Labels: []int{3, 300, 70000}},
	{VideoID: "vidéo_2", Scores: []float32{0.5}, Labels: []int{399}},
	{VideoID: "empty", Scores: nil, Labels: []int{}},
	{VideoID: "wide", Scores: []float32{-0.25, float32(math.Inf(-1))}, Labels: []int{-1, 1 << 40}},
}

// disassemble lists the opcodes of a pickle in the style of Python's
// pickletools.dis, one per line, checking each is well formed and that
// memo indices count up from 0 as Pickler.memoize numbers them.
func disassemble(data []byte) (string, error) {
	var b strings.Builder
	i := 0
	var memo uint32
	need := func(n int) ([]byte, error) {
		if i+n > len(data) {
			return nil, fmt.Errorf("offset %d: truncated", i)
		}
		out := data[i : i+n]
		i += n
		return out, nil
	}
	for i < len(data) {
		pos := i
		op := data[i]
		i++
		var arg string
		var name string
		switch op {
		case opProto:
			name = "PROTO"
			a, err := need(1)
			if err != nil {
				return "", err
			}
			arg = fmt.Sprint(a[0])
		case opEmptyList:
			name = "EMPTY_LIST"
		case opBinPut, opLongBinPut:
			n := 1
			name = "BINPUT"
			if op == opLongBinPut {
				name, n = "LONG_BINPUT", 4
			}
			a, err := need(n)
			if err != nil {
				return "", err
			}
			idx := uint32(a[0])
			if n == 4 {
				idx = binary.LittleEndian.Uint32(a)
			}
			if idx != memo {
				return "", fmt.Errorf("offset %d: memo index %d, want %d", pos, idx, memo)
			}
			memo++
			arg = fmt.Sprint(idx)
		case opMark:
			name = "MARK"
		case opAppend:
			name = "APPEND"
		case opAppends:
			name = "APPENDS"
		case opBinUnicode:
			name = "BINUNICODE"
			a, err := need(4)
			if err != nil {
				return "", err
			}
			s, err := need(int(binary.LittleEndian.Uint32(a)))
			if err != nil {
				return "", err
			}
			arg = fmt.Sprintf("%q", s)
		case opBinFloat:
			name = "BINFLOAT"
			a, err := need(8)
			if err != nil {
				return "", err
			}
			arg = fmt.Sprint(math.Float64frombits(binary.BigEndian.Uint64(a)))
		case opBinInt1:
			name = "BININT1"
			a, err := need(1)
			if err != nil {
				return "", err
			}
			arg = fmt.Sprint(a[0])
		case opBinInt2:
			name = "BININT2"
			a, err := need(2)
			if err != nil {
				return "", err
			}
			arg = fmt.Sprint(binary.LittleEndian.Uint16(a))
		case opBinInt:
			name = "BININT"
			a, err := need(4)
			if err != nil {
				return "", err
			}
			arg = fmt.Sprint(int32(binary.LittleEndian.Uint32(a)))
		case opLong1:
			name = "LONG1"
			n, err := need(1)
			if err != nil {
				return "", err
			}
			a, err := need(int(n[0]))
			if err != nil {
				return "", err
			}
			arg = fmt.Sprint(decodeLong(a))
		case opTuple3:
			name = "TUPLE3"
		case opStop:
			name = "STOP"
		default:
			return "", fmt.Errorf("offset %d: unexpected opcode 0x%02x", pos, op)
		}
		fmt.Fprintf(&b, "%5d: %-11s %s\n", pos, name, arg)
		if op == opStop && i != len(data) {
			return "", fmt.Errorf("offset %d: %d bytes after STOP", pos, len(data)-i)
		}
	}
	return b.String(), nil
}

func decodeLong(a []byte) int64 {
	var v int64
	for k := len(a) - 1; k >= 0; k-- {
		v = v<<8 | int64(a[k])
	}
	if len(a) > 0 && len(a) < 8 && a[len(a)-1]&0x80 != 0 {
		v -= 1 << (8 * len(a))
	}
	return v
}

// unpickle reads rows back with internal/pickle (no globals allowed).
func unpickle(data []byte) ([]InferRow, error) {
	v, err := pickle.Decode(data, nil)
	if err != nil {
		return nil, err
	}
	l, ok := v.(*pickle.List)
	if !ok {
		return nil, fmt.Errorf("top object is %s, want a list", pickle.TypeName(v))
	}
	var rows []InferRow
	for _, it := range l.Items {
		t, ok := it.(pickle.Tuple)
		if !ok || len(t) != 3 {
			return nil, fmt.Errorf("row %v, want a 3-tuple", it)
		}
		id, ok1 := t[0].(string)
		scores, ok2 := t[1].(*pickle.List)
		labels, ok3 := t[2].(*pickle.List)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("row %v, want (str, list, list)", t)
		}
		r := InferRow{VideoID: id, Scores: []float32{}, Labels: []int{}}
		for _, s := range scores.Items {
			f, ok := s.(float64)
			if !ok || float64(float32(f)) != f && !math.IsNaN(f) {
				return nil, fmt.Errorf("score %v is not a float32 value", s)
			}
			r.Scores = append(r.Scores, float32(f))
		}
		for _, l := range labels.Items {
			n, ok := l.(int64)
			if !ok {
				return nil, fmt.Errorf("label %v is not an int", l)
			}
			r.Labels = append(r.Labels, int(n))
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// normalize makes nil and empty slices compare equal, as they do in Python.
func normalize(rows []InferRow) []InferRow {
	out := make([]InferRow, len(rows))
	for i, r := range rows {
		out[i] = InferRow{VideoID: r.VideoID, Scores: append([]float32{}, r.Scores...), Labels: append([]int{}, r.Labels...)}
	}
	return out
}

func TestPickleGolden(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "TSM_infer_result")
	if err := WritePickle(path, goldenRows); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dis, err := disassemble(data)
	if err != nil {
		t.Fatalf("disassemble: %v", err)
	}
	golden.Check(t, filepath.Join("testdata", "infer_result.pickle.golden"), []byte(dis))
	got, err := unpickle(data)
	if err != nil {
		t.Fatalf("unpickle: %v", err)
	}
	if !reflect.DeepEqual(got, normalize(goldenRows)) {
		t.Errorf("round trip:\n got %v\nwant %v", got, normalize(goldenRows))
	}
}

func TestPickleBatchesAndMemo(t *testing.T) {
	t.Parallel()
	// 2500 scores: APPENDS batches of 1000, 1000, 500. 300 rows: the memo
	// passes 255 and switches to LONG_BINPUT.
	scores := make([]float32, 2500)
	labels := make([]int, 2500)
	for i := range scores {
		scores[i] = float32(2500-i) / 2500
		labels[i] = i
	}
	rows := []InferRow{{VideoID: "big", Scores: scores, Labels: labels}}
	for i := range 300 {
		rows = append(rows, InferRow{VideoID: fmt.Sprintf("v%03d", i), Scores: []float32{1, 0}, Labels: []int{0, 1}})
	}
	data, err := EncodePickle(rows)
	if err != nil {
		t.Fatal(err)
	}
	dis, err := disassemble(data)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(dis), "\n")
	var appends []int
	n := 0
	for _, l := range lines {
		f := strings.Fields(l)
		if f[1] == "TUPLE3" {
			break // end of the first row
		}
		switch f[1] {
		case "MARK":
			n = 0
		case "BINFLOAT":
			n++
		case "APPENDS":
			if n > 0 {
				appends = append(appends, n)
			}
		}
	}
	if !reflect.DeepEqual(appends[:3], []int{1000, 1000, 500}) {
		t.Errorf("score APPENDS batches = %v, want [1000 1000 500]", appends)
	}
	if !strings.Contains(dis, "LONG_BINPUT 256\n") {
		t.Error("memo index 256 not written with LONG_BINPUT")
	}
	got, err := unpickle(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, normalize(rows)) {
		t.Error("round trip of large pickle differs")
	}
}

// pythonCheck loads the pickle with Python's own pickle module, checks the
// types Paddle's infer.py produces, and reports whether pickle.dumps of the
// loaded object with protocol 2 gives the same bytes.
const pythonCheck = `
import json, math, pickle, sys
data = open(sys.argv[1], 'rb').read()
rows = pickle.loads(data)
assert type(rows) is list, type(rows)
out = []
for r in rows:
    assert type(r) is tuple and len(r) == 3, r
    vid, scores, labels = r
    assert type(vid) is str, type(vid)
    assert type(scores) is list and all(type(s) is float for s in scores), scores
    assert type(labels) is list and all(type(l) is int for l in labels), labels
    out.append([vid, [s if math.isfinite(s) else repr(s) for s in scores], labels])
print(json.dumps({"rows": out, "same_bytes": pickle.dumps(rows, protocol=2) == data}))
`

func TestPicklePython(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: Python's own pickle.load check skipped; TestPickleGolden still checks the opcode stream")
	}
	// Ids are distinct and longer than one character so that CPython
	// shares no str objects between them (which would add BINGET opcodes
	// to its re-dump).
	rows := []InferRow{
		{VideoID: "abseiling/0347Zf.mp4", Scores: []float32{0.75, 0.125, 1e-7}, Labels: []int{3, 300, 70000}},
		{VideoID: "vidéo_2", Scores: []float32{0.5}, Labels: []int{399}},
		{VideoID: "empty", Scores: nil, Labels: []int{}},
		{VideoID: "wide", Scores: []float32{-0.25, float32(math.Inf(-1))}, Labels: []int{-1, 1 << 40}},
	}
	path := filepath.Join(t.TempDir(), "TSM_infer_result")
	if err := WritePickle(path, rows); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", pythonCheck, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 pickle.load: %v\n%s", err, out)
	}
	var res struct {
		Rows      [][3]json.RawMessage `json:"rows"`
		SameBytes bool                 `json:"same_bytes"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if len(res.Rows) != len(rows) {
		t.Fatalf("python loaded %d rows, want %d", len(res.Rows), len(rows))
	}
	for i, r := range res.Rows {
		var id string
		var scores []any
		var labels []int
		if err := errors.Join(json.Unmarshal(r[0], &id), json.Unmarshal(r[1], &scores), json.Unmarshal(r[2], &labels)); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if id != rows[i].VideoID || !reflect.DeepEqual(labels, append([]int{}, rows[i].Labels...)) || len(scores) != len(rows[i].Scores) {
			t.Errorf("row %d: python read (%q, %v, %v), want %v", i, id, scores, labels, rows[i])
			continue
		}
		for j, s := range scores {
			want := float64(rows[i].Scores[j])
			switch v := s.(type) {
			case float64:
				if v != want {
					t.Errorf("row %d score %d: python read %v, want %v", i, j, v, want)
				}
			case string:
				if v != "-inf" || !math.IsInf(want, -1) {
					t.Errorf("row %d score %d: python read %s, want %v", i, j, v, want)
				}
			}
		}
	}
	if !res.SameBytes {
		t.Error("pickle.dumps(pickle.loads(file), protocol=2) differs from the file: the stream is not CPython's")
	}
}
