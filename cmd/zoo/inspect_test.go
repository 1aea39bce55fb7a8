package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/weights"
)

// TestWeightsPdparams: a checkpoint written as a .pdparams (as
// paddle.static.save writes one, Paddle's fluid names as keys) is what
// --weights and --pretrain take, and evaluates exactly as the directory
// does; zoo weights inspect lists the same variables in every form.
// Before, --weights FILE was "not a directory of parameter files" and
// there was no inspect.
func TestWeightsPdparams(t *testing.T) {
	t.Parallel()
	save := t.TempDir()
	r := zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1"}, tinyTSM(save)...)...)
	if r.code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ckpt := filepath.Join(save, "TSM_epoch0")
	ps, err := weights.ReadParams(ckpt, nil)
	if err != nil {
		t.Fatalf("ReadParams(%s): %v", ckpt, err)
	}
	ts := ps.Tensors
	dir := t.TempDir()
	pdparams := filepath.Join(dir, "tsm.pdparams")
	if err := weights.WritePdparams(pdparams, ts); err != nil {
		t.Fatal(err)
	}

	// The same weights from the directory and from the .pdparams.
	test := func(w string) results.TestResult {
		t.Helper()
		out := t.TempDir()
		r := zoo(t, nil, append([]string{"run", "TSM", "test", "--weights", w}, tinyTSM(out)...)...)
		if r.code != 0 {
			t.Fatalf("test --weights %s: exit %d\n%s\n%s", w, r.code, r.stdout, r.stderr)
		}
		var tr results.TestResult
		readJSON(t, filepath.Join(out, "TSM_test_result.json"), &tr)
		return tr
	}
	fromDir, fromFile := test(ckpt), test(pdparams)
	if fromDir.Videos != 8 || fromDir.Loss != fromFile.Loss || fromDir.Top1 != fromFile.Top1 {
		t.Errorf("test from the .pdparams %+v, from the directory %+v: want the same", fromFile, fromDir)
	}
	r = zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--pretrain", pdparams}, tinyTSM(t.TempDir())...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "pretrained:") || !strings.Contains(r.stderr, "from "+pdparams) {
		t.Errorf("train --pretrain %s: exit %d\n%s", pdparams, r.code, r.stderr)
	}

	// inspect: the directory and the .pdparams list the same variables.
	inspect := func(args ...string) (string, InspectJSON) {
		t.Helper()
		r := zoo(t, nil, append([]string{"weights", "inspect"}, args...)...)
		if r.code != 0 {
			t.Fatalf("inspect %v: exit %d\n%s", args, r.code, r.stderr)
		}
		var j InspectJSON
		r2 := zoo(t, nil, append([]string{"weights", "inspect", "--json"}, args...)...)
		if err := json.Unmarshal([]byte(r2.stdout), &j); err != nil {
			t.Fatalf("inspect --json %v: %v\n%s", args, err, r2.stdout)
		}
		return r.stdout, j
	}
	dirOut, dirJ := inspect(ckpt)
	fileOut, fileJ := inspect(pdparams)
	lines := strings.Split(strings.TrimSpace(dirOut), "\n")
	if len(lines) != len(ts)+2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasSuffix(lines[len(lines)-1], "; directory") {
		t.Errorf("inspect %s: %d lines, want a header, %d variables and the totals:\n%s", ckpt, len(lines), len(ts), dirOut)
	}
	if strings.TrimSuffix(strings.TrimSpace(dirOut), "directory") != strings.TrimSuffix(strings.TrimSpace(fileOut), "pdparams") {
		t.Errorf("inspect of the directory and of the .pdparams differ:\n%s\n%s", dirOut, fileOut)
	}
	if dirJ.Variables != len(ts) || fileJ.Form != "pdparams" || fileJ.Numel != dirJ.Numel || len(fileJ.Tensors) != len(ts) {
		t.Errorf("inspect --json: directory %+v, pdparams %+v", dirJ, fileJ)
	}
	if f := strings.Fields(lineOf(dirOut, "conv1_weights ")); len(f) < 2 || f[1] != "FP32" || strings.Join(f[2:], " ") != "[4, 3, 7, 7]" {
		t.Errorf("inspect %s: conv1_weights line %q, want FP32 [4, 3, 7, 7] (base_width 4)", ckpt, f)
	}

	// A combined file: unnamed records, or named by --names.
	combined := filepath.Join(dir, "model.pdiparams")
	var names []string
	m := map[string]*weights.Tensor{}
	for _, t := range ts {
		m[t.Name] = t
		names = append(names, t.Name)
	}
	if err := weights.WriteCombined(combined, m); err != nil {
		t.Fatal(err)
	}
	namesFile := filepath.Join(dir, "names.txt")
	os.WriteFile(namesFile, []byte("# TSM's variables\n"+strings.Join(names, "\n")+"\n"), 0o644)
	_, unnamed := inspect(combined)
	if unnamed.Form != "combined" || !unnamed.Unnamed || unnamed.Tensors[0].Name != "#0" {
		t.Errorf("inspect of a combined file without names: %+v", unnamed)
	}
	named, namedJ := inspect(combined, "--names", namesFile)
	if strings.TrimSuffix(strings.TrimSpace(named), "combined") != strings.TrimSuffix(strings.TrimSpace(dirOut), "directory") || namedJ.Unnamed {
		t.Errorf("inspect %s --names: differs from the directory's:\n%s", combined, named)
	}

	// numpy 2's module names (numpy._core.multiarray), from the fixture.
	p4, _ := filepath.Abs(filepath.Join("..", "..", "weights", "testdata", "p4.pdparams"))
	out, p4J := inspect(p4)
	if f := strings.Fields(lineOf(out, "half ")); p4J.Variables != 7 || strings.Join(f, " ") != "half FP16 [3]" {
		t.Errorf("inspect %s:\n%s", p4, out)
	}
}

// lineOf returns the line of out that starts with prefix.
func lineOf(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// InspectJSON is the part of `zoo weights inspect --json` the tests read.
type InspectJSON struct {
	Form      string `json:"form"`
	Variables int    `json:"variables"`
	Numel     int64  `json:"total_numel"`
	Unnamed   bool   `json:"unnamed"`
	Tensors   []struct {
		Name  string  `json:"name"`
		DType string  `json:"dtype"`
		Shape []int64 `json:"shape"`
	} `json:"tensors"`
}

// TestWeightsPdparamsErrors: every bad .pdparams or inspect input is one
// line naming the file and what is wrong.
func TestWeightsPdparamsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hostile := filepath.Join(dir, "hostile.pdparams")
	os.WriteFile(hostile, []byte("cos\nsystem\n(S'touch "+filepath.Join(dir, "pwned")+"'\ntR."), 0o644)
	short := filepath.Join(dir, "short.pdparams")
	if err := weights.WritePdparams(short, []*weights.Tensor{weights.NewFloat32("conv1_weights", []int64{2}, []float32{1, 2})}); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, "notes.txt")
	os.WriteFile(notes, []byte("hello\n"), 0o644)
	combined := filepath.Join(dir, "__params__")
	two := map[string]*weights.Tensor{"a": weights.NewFloat32("a", []int64{1}, []float32{1}), "b": weights.NewFloat32("b", []int64{1}, []float32{2})}
	if err := weights.WriteCombined(combined, two); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"hostile pickle", []string{"weights", "inspect", hostile}, 1, hostile + ": pdparams: global os.system is not allowed"},
		{"hostile pickle as weights", []string{"run", "TSM", "test", "--weights", hostile}, 1, "global os.system is not allowed"},
		{"pdparams of another model", []string{"run", "TSM", "test", "--weights", short}, 1, short},
		{"not parameters", []string{"weights", "inspect", notes}, 1, notes},
		{"a text file as weights", []string{"run", "TSM", "test", "--weights", notes}, 2, "--weights " + notes + ": not a directory of parameter files"},
		{"pdparams to resume", []string{"run", "TSM", "train", "--resume", short}, 2, "--resume " + short + ": not a directory of parameter files"},
		{"missing", []string{"weights", "inspect", filepath.Join(dir, "nope")}, 1, filepath.Join(dir, "nope") + ": no such file or directory"},
		{"names for a pdparams", []string{"weights", "inspect", short, "--names", notes}, 1, "names are for a combined file"},
		{"too few names", []string{"weights", "inspect", combined, "--names", notes}, 1, "trailing bytes after 1 records"},
		{"empty names file", []string{"weights", "inspect", combined, "--names", filepath.Join(dir, "nope")}, 2, "--names " + filepath.Join(dir, "nope")},
		{"names and model", []string{"weights", "inspect", combined, "--names", notes, "--model", "TSM"}, 2, "--names and --model"},
		{"model of another size", []string{"weights", "inspect", combined, "--model", "TSM"}, 1, "2 records, but"},
		{"no path", []string{"weights", "inspect"}, 2, "inspect needs one path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oneLineError(t, zoo(t, nil, tc.args...), tc.code, tc.want)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("the hostile pickle ran its command")
	}
}
