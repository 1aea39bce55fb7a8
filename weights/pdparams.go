package weights

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/zoo-ml/zoo/internal/pickle"
)

// Paddle 1.6+ saves parameters (fluid.save, paddle.save) as .pdparams: a
// Python pickle of a dict {name: numpy array}. ReadPdparams decodes it
// with internal/pickle and an allow-list of what such files hold: numpy
// arrays, dtypes and scalars, OrderedDict, set. Every other global is
// refused, so a hostile pickle cannot do anything but fail.

// MaxPdparamsSize caps the .pdparams file read into memory: ResNet-152's
// parameters take about 240 MB; 4 GiB is far above any zoo model.
const MaxPdparamsSize = 4 << 30

// ReadPdparams reads a .pdparams pickle and returns its numpy arrays as
// tensors, named by their keys. Entries that are not arrays (Paddle 2's
// "StructuredToParameterName@@" name map) are skipped.
func ReadPdparams(path string) (map[string]*Tensor, error) {
	ts, err := ReadPdparamsList(path)
	if err != nil {
		return nil, err
	}
	return byName(ts), nil
}

// ReadPdparamsList is ReadPdparams in the file's order (the order of
// paddle.save's dict).
func ReadPdparamsList(path string) ([]*Tensor, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > MaxPdparamsSize {
		return nil, fmt.Errorf("weights: %s: not a regular file of at most %d bytes", path, int64(MaxPdparamsSize))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	ts, err := decodePdparams(b)
	if err != nil {
		return nil, withPath(err, path)
	}
	return ts, nil
}

// DecodePdparams is ReadPdparams on the bytes of a file. The tensors'
// data may share memory with b.
func DecodePdparams(b []byte) (map[string]*Tensor, error) {
	ts, err := decodePdparams(b)
	if err != nil {
		return nil, err
	}
	return byName(ts), nil
}

func byName(ts []*Tensor) map[string]*Tensor {
	out := make(map[string]*Tensor, len(ts))
	for _, t := range ts {
		out[t.Name] = t
	}
	return out
}

func decodePdparams(b []byte) ([]*Tensor, error) {
	top, err := pickle.Decode(b, pdparamsGlobals)
	if err != nil {
		var pe *pickle.Error
		if errors.As(err, &pe) {
			return nil, &FormatError{Offset: pe.Offset, Reason: "pdparams: " + pe.Reason}
		}
		return nil, &FormatError{Reason: "pdparams: " + err.Error()}
	}
	d, ok := top.(*pickle.Dict)
	if !ok {
		return nil, &FormatError{Offset: int64(len(b)), Reason: fmt.Sprintf("pdparams: top object is %s, want a dict", pickle.TypeName(top))}
	}
	var out []*Tensor
	seen := map[string]bool{}
	for i, k := range d.Keys {
		name, ok := pickle.String(k)
		if !ok {
			continue
		}
		if name == "UnpackBigParamInfor@@" {
			return nil, &FormatError{Offset: int64(len(b)), Reason: "pdparams: parameters split into slices (UnpackBigParamInfor@@) are not supported"}
		}
		a, ok := d.Vals[i].(*npArray)
		if !ok {
			continue
		}
		if seen[name] { // "x" and b"x" in one dict
			return nil, &FormatError{Offset: int64(len(b)), Reason: fmt.Sprintf("pdparams: parameter %q twice", name)}
		}
		seen[name] = true
		t, err := a.tensor(name)
		if err != nil {
			return nil, &FormatError{Offset: int64(len(b)), Reason: "pdparams: " + err.Error()}
		}
		out = append(out, t)
	}
	return out, nil
}

type (
	npDtype struct {
		code  string
		order byte // '<', '>', '|' or '='
	}
	npArray struct {
		built   bool
		shape   []int64
		dtype   *npDtype
		fortran bool
		data    []byte
	}
)

// pdparamsGlobals is the allow-list of a .pdparams: numpy arrays, dtypes
// and scalars (numpy 1's numpy.core and numpy 2's numpy._core), Python
// 3's protocol 2 bytes, OrderedDict and set. Nothing else may be named.
var pdparamsGlobals = map[pickle.Global]pickle.Func{
	{Module: "numpy.core.multiarray", Name: "_reconstruct"}:  reconstruct,
	{Module: "numpy._core.multiarray", Name: "_reconstruct"}: reconstruct,
	{Module: "numpy.core.multiarray", Name: "scalar"}:        scalar,
	{Module: "numpy._core.multiarray", Name: "scalar"}:       scalar,
	{Module: "numpy", Name: "ndarray"}:                       notCallable,
	{Module: "numpy", Name: "dtype"}:                         dtype,
	{Module: "_codecs", Name: "encode"}:                      pickle.Latin1,
	{Module: "collections", Name: "OrderedDict"}:             func(pickle.Tuple) (any, error) { return &pickle.Dict{}, nil },
	{Module: "__builtin__", Name: "set"}:                     func(pickle.Tuple) (any, error) { return &pickle.Set{}, nil },
	{Module: "builtins", Name: "set"}:                        func(pickle.Tuple) (any, error) { return &pickle.Set{}, nil },
}

// notCallable: numpy.ndarray only ever appears as _reconstruct's argument.
func notCallable(pickle.Tuple) (any, error) {
	return nil, errors.New("cannot be called in a parameter file")
}

func reconstruct(pickle.Tuple) (any, error) { return &npArray{}, nil }

func dtype(a pickle.Tuple) (any, error) {
	if len(a) < 1 {
		return nil, errors.New("dtype arguments")
	}
	code, ok := pickle.String(a[0])
	if !ok {
		return nil, errors.New("dtype arguments")
	}
	return &npDtype{code: code, order: '='}, nil
}

// scalar is a numpy scalar: (dtype, bytes).
func scalar(a pickle.Tuple) (any, error) {
	if len(a) != 2 {
		return nil, errors.New("scalar arguments")
	}
	dt, ok1 := a[0].(*npDtype)
	data, ok2 := a[1].([]byte)
	if !ok1 || !ok2 {
		return nil, errors.New("scalar arguments")
	}
	return &npArray{built: true, shape: []int64{}, dtype: dt, data: data}, nil
}

func (o *npDtype) SetState(state any) error {
	st, ok := state.(pickle.Tuple)
	if !ok || len(st) < 2 {
		return errors.New("dtype state")
	}
	order, ok := pickle.String(st[1])
	if !ok || len(order) != 1 {
		return errors.New("dtype byte order")
	}
	o.order = order[0]
	return nil
}

func (o *npArray) SetState(state any) error {
	st, ok := state.(pickle.Tuple)
	if !ok || len(st) != 5 {
		return errors.New("ndarray state")
	}
	shape, ok := st[1].(pickle.Tuple)
	if !ok {
		return errors.New("ndarray shape")
	}
	o.shape = make([]int64, len(shape))
	for i, d := range shape {
		v, ok := d.(int64)
		if !ok {
			return errors.New("ndarray shape")
		}
		o.shape[i] = v
	}
	if o.dtype, ok = st[2].(*npDtype); !ok {
		return errors.New("ndarray dtype")
	}
	f, ok := st[3].(bool)
	if !ok {
		if i, isInt := st[3].(int64); isInt {
			f, ok = i != 0, true
		}
	}
	if !ok {
		return errors.New("ndarray order flag")
	}
	o.fortran = f
	switch d := st[4].(type) {
	case []byte:
		o.data = d
	case string: // Python 2 str read as unicode by mistake: refuse
		return errors.New("ndarray data is text")
	default:
		return fmt.Errorf("ndarray data is %s (object arrays are not parameters)", pickle.TypeName(d))
	}
	o.built = true
	return nil
}

var npCodes = map[string]DType{
	"f2": FP16, "f4": FP32, "f8": FP64,
	"i1": Int8, "i2": Int16, "i4": Int32, "i8": Int64,
	"u1": Uint8, "b1": Bool,
}

func (a *npArray) tensor(name string) (*Tensor, error) {
	if !a.built {
		return nil, fmt.Errorf("%s: ndarray without state", name)
	}
	dt, ok := npCodes[a.dtype.code]
	if !ok {
		return nil, fmt.Errorf("%s: numpy dtype %q is not a Paddle parameter type", name, a.dtype.code)
	}
	n, err := numel(a.shape)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	sz := dt.Size()
	if int64(len(a.data)) != n*int64(sz) {
		return nil, fmt.Errorf("%s: %d data bytes for %s %v", name, len(a.data), dt, a.shape)
	}
	data := a.data
	if a.dtype.order == '>' && sz > 1 {
		data = make([]byte, len(a.data))
		for i := 0; i < len(data); i += sz {
			for j := range sz {
				data[i+j] = a.data[i+sz-1-j]
			}
		}
	}
	if a.fortran && len(a.shape) > 1 && n > 0 {
		data = fortranToC(data, a.shape, sz)
	}
	return &Tensor{Name: name, DType: dt, Dims: a.shape, Data: data}, nil
}

// fortranToC reorders column-major data to row-major.
func fortranToC(src []byte, shape []int64, sz int) []byte {
	dst := make([]byte, len(src))
	idx := make([]int64, len(shape))
	for c := int64(0); c < int64(len(src)/sz); c++ {
		// Column-major offset of the row-major index idx.
		var f, stride int64 = 0, 1
		for k := range shape {
			f += idx[k] * stride
			stride *= shape[k]
		}
		copy(dst[c*int64(sz):], src[f*int64(sz):(f+1)*int64(sz)])
		for k := len(shape) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return dst
}

// WritePdparams writes tensors, in their order, as paddle.static.save
// writes a .pdparams: a protocol 4 pickle of a dict {name: numpy array}
// with numpy 1's module names (numpy 2 loads them too). No command writes
// .pdparams files yet: the tests use it for fixtures, which CPython loads
// (TestWritePdparams), so the reader is checked against files Python reads.
func WritePdparams(path string, ts []*Tensor) error {
	b, err := EncodePdparams(ts)
	if err != nil {
		return fmt.Errorf("weights: %s: %w", path, err)
	}
	return atomicWrite(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// EncodePdparams returns the bytes WritePdparams writes.
func EncodePdparams(ts []*Tensor) ([]byte, error) {
	ndarray := pickle.Global{Module: "numpy", Name: "ndarray"}
	rec := pickle.Global{Module: "numpy.core.multiarray", Name: "_reconstruct"}
	dtypes := map[DType]*pickle.Object{} // numpy shares one dtype object per type
	d := &pickle.Dict{}
	size := 64
	for _, t := range ts {
		if err := t.validate(); err != nil {
			return nil, err
		}
		code, ok := numpyCode(t.DType)
		if !ok {
			return nil, fmt.Errorf("%s: %s has no numpy type", t.Name, t.DType)
		}
		dt := dtypes[t.DType]
		if dt == nil {
			order := "<"
			if t.DType.Size() == 1 {
				order = "|"
			}
			dt = &pickle.Object{Func: pickle.Global{Module: "numpy", Name: "dtype"}, Args: pickle.Tuple{code, false, true},
				State: pickle.Tuple{int64(3), order, nil, nil, nil, int64(-1), int64(-1), int64(0)}}
			dtypes[t.DType] = dt
		}
		shape := make(pickle.Tuple, len(t.Dims))
		for i, v := range t.Dims {
			shape[i] = v
		}
		d.Set(t.Name, &pickle.Object{Func: rec, Args: pickle.Tuple{ndarray, pickle.Tuple{int64(0)}, []byte("b")},
			State: pickle.Tuple{int64(1), shape, dt, false, t.Data}})
		size += 128 + len(t.Name) + len(t.Data)
	}
	return pickle.AppendMarshal(make([]byte, 0, size), d, 4)
}

func numpyCode(dt DType) (string, bool) {
	for c, d := range npCodes {
		if d == dt {
			return c, true
		}
	}
	return "", false
}

// The forms of parameter files ReadParams tells apart.
const (
	FormDir      = "directory" // one file per variable (save_params, checkpoints)
	FormFile     = "file"      // one variable's file
	FormCombined = "combined"  // __params__, .pdiparams (save_combine)
	FormPdparams = "pdparams"  // a pickle (paddle.save, paddle.static.save)
)

// Params is what ReadParams found at a path.
type Params struct {
	Form    string    // FormDir, FormFile, FormCombined or FormPdparams
	Tensors []*Tensor // a directory's in name order, a .pdparams's in the file's, a combined file's in record order
	Skipped []string  // a directory's files that are not parameter records (zoo_state.json, __model__)
}

// ReadParams reads every variable at path, whichever of Paddle's forms it
// has. A combined file's records carry no names: names, the complete list
// of its variables (in any order: save_combine writes them sorted), names
// them; without names they are left empty. names is only for combined
// files.
func ReadParams(path string, names []string) (*Params, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if st.IsDir() {
		if names != nil {
			return nil, fmt.Errorf("weights: %s: a directory names its variables itself; names are for a combined file", path)
		}
		list, err := ListDir(path)
		if err != nil {
			return nil, err
		}
		var vars, skipped []string
		for _, n := range list {
			if isRecord(filepath.Join(path, n)) {
				vars = append(vars, n)
			} else {
				skipped = append(skipped, n)
			}
		}
		ts, err := ReadDir(path, vars)
		if err != nil {
			return nil, err
		}
		return &Params{Form: FormDir, Tensors: inOrder(ts, vars), Skipped: skipped}, nil
	}
	if isPickle(path) {
		if names != nil {
			return nil, fmt.Errorf("weights: %s: a .pdparams names its variables itself; names are for a combined file", path)
		}
		ts, err := ReadPdparamsList(path)
		if err != nil {
			return nil, err
		}
		return &Params{Form: FormPdparams, Tensors: ts}, nil
	}
	if names != nil {
		ts, err := ReadCombined(path, names)
		if err != nil {
			return nil, err
		}
		sorted := slices.Clone(names)
		slices.Sort(sorted)
		return &Params{Form: FormCombined, Tensors: inOrder(ts, sorted)}, nil
	}
	ts, err := readRecords(path, st.Size())
	if err != nil {
		return nil, err
	}
	if len(ts) == 1 {
		ts[0].Name = filepath.Base(path)
		return &Params{Form: FormFile, Tensors: ts}, nil
	}
	return &Params{Form: FormCombined, Tensors: ts}, nil
}

// isRecord: a fluid record starts with its version, a uint32 0; JSON,
// text and a ProgramDesc (__model__) do not.
func isRecord(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true // let ReadDir name the problem
	}
	defer f.Close()
	var b [4]byte
	_, err = io.ReadFull(f, b[:])
	return err != nil || b == [4]byte{}
}

func inOrder(ts map[string]*Tensor, names []string) []*Tensor {
	out := make([]*Tensor, len(names))
	for i, n := range names {
		out[i] = ts[n]
	}
	return out
}

// isPickle: a .pdparams (or .pdopt) by its name, or any file that starts
// with pickle's PROTO opcode (a fluid record starts with version 0).
func isPickle(path string) bool {
	switch filepath.Ext(path) {
	case ".pdparams", ".pdopt":
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [1]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && b[0] == 0x80
}

// readRecords reads a file's records, unnamed, to its end.
func readRecords(path string, size int64) ([]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var out []*Tensor
	var off int64
	for off < size || len(out) == 0 {
		t, err := Decode(br, size-off)
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				c := *fe
				c.Path, c.Offset = path, off+fe.Offset
				c.Reason = fmt.Sprintf("record %d: %s", len(out), fe.Reason)
				return nil, &c
			}
			return nil, fmt.Errorf("weights: %s: record %d: %w", path, len(out), err)
		}
		out = append(out, t)
		off += recordSize(t)
	}
	return out, nil
}
