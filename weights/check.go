package weights

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Spec is what a model expects of one variable.
type Spec struct {
	DType DType
	Dims  []int64
}

// MismatchError reports needed variables that are missing from a weights
// directory or have the wrong dtype or dims. Its message is one line: the
// first wrong variable with its file, expected and found shape, or the
// missing names.
type MismatchError struct {
	Dir     string
	Missing []string // sorted
	Wrong   []string // one line per wrong variable, sorted by name
}

func (e *MismatchError) Error() string {
	var parts []string
	if len(e.Wrong) > 0 {
		s := e.Wrong[0]
		if len(e.Wrong) > 1 {
			s += fmt.Sprintf(" (and %d more wrong)", len(e.Wrong)-1)
		}
		parts = append(parts, s)
	}
	if len(e.Missing) > 0 {
		const show = 8
		m := e.Missing
		more := ""
		if len(m) > show {
			more = fmt.Sprintf(" and %d more", len(m)-show)
			m = m[:show]
		}
		parts = append(parts, fmt.Sprintf("weights: %s: %d needed variables missing: %s%s", e.Dir, len(e.Missing), strings.Join(m, ", "), more))
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

func wrongLine(name, dir string, want Spec, dt DType, dims []int64) string {
	if dt != want.DType {
		return fmt.Sprintf("weights: %s in %s: dtype %s, want %s", name, dir, dt, want.DType)
	}
	return fmt.Sprintf("weights: %s in %s: shape %v, want %v", name, dir, dims, want.Dims)
}

// Check verifies, reading headers only, that dir holds every variable of
// want with the wanted dtype and dims, and that each file is exactly one
// well-formed record. It returns the sorted names of the other variables
// in dir (optimizer state in checkpoints, fc_0.* when pretraining), which
// callers ignore and may count at debug level. A malformed file is an
// error wrapping ErrFormat; missing or wrong variables a *MismatchError.
func Check(dir string, want map[string]Spec) (extra []string, err error) {
	have, err := ListDir(dir)
	if err != nil {
		return nil, err
	}
	me := &MismatchError{Dir: dir}
	for _, name := range sortedKeys(want) {
		if !slices.Contains(have, name) {
			me.Missing = append(me.Missing, name)
			continue
		}
		h, err := readHeader(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if w := want[name]; h.dtype != w.DType || !slices.Equal(h.dims, w.Dims) {
			me.Wrong = append(me.Wrong, wrongLine(name, dir, w, h.dtype, h.dims))
		}
	}
	for _, n := range have {
		if _, ok := want[n]; !ok {
			extra = append(extra, n)
		}
	}
	if len(me.Missing) > 0 || len(me.Wrong) > 0 {
		return extra, me
	}
	return extra, nil
}

// Load checks dir as Check does and reads the wanted variables.
func Load(dir string, want map[string]Spec) (map[string]*Tensor, []string, error) {
	extra, err := Check(dir, want)
	if err != nil {
		return nil, extra, err
	}
	ts, err := ReadDir(dir, sortedKeys(want))
	if err != nil {
		return nil, extra, err
	}
	// The files may have changed since Check: check again what was read.
	for name, t := range ts {
		if w := want[name]; t.DType != w.DType || !slices.Equal(t.Dims, w.Dims) {
			return nil, extra, &MismatchError{Dir: dir, Wrong: []string{wrongLine(name, dir, w, t.DType, t.Dims)}}
		}
	}
	return ts, extra, nil
}

// CheckTensors is Check for tensors already in memory (from a combined
// file, say); where names the source in messages.
func CheckTensors(where string, ts map[string]*Tensor, want map[string]Spec) (extra []string, err error) {
	me := &MismatchError{Dir: where}
	for _, name := range sortedKeys(want) {
		t, ok := ts[name]
		if !ok {
			me.Missing = append(me.Missing, name)
			continue
		}
		if w := want[name]; t.DType != w.DType || !slices.Equal(t.Dims, w.Dims) {
			me.Wrong = append(me.Wrong, wrongLine(name, where, w, t.DType, t.Dims))
		}
	}
	for _, n := range sortedKeys(ts) {
		if _, ok := want[n]; !ok {
			extra = append(extra, n)
		}
	}
	if len(me.Missing) > 0 || len(me.Wrong) > 0 {
		return extra, me
	}
	return extra, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
