package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func entries(perClass ...int) []Entry {
	var es []Entry
	for c, n := range perClass {
		for i := range n {
			es = append(es, Entry{Path: fmt.Sprintf("c%d/v%02d.mp4", c, i), Label: c})
		}
	}
	return es
}

// TestSplit: stratified, disjoint, covering, a function of the seed.
func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		per     []int
		frac    float64
		wantVal []int // per class
	}{
		{"tenth", []int{20, 10, 30}, 0.1, []int{2, 1, 3}},
		{"one of two", []int{2, 2}, 0.1, []int{1, 1}},
		{"single stays in train", []int{1, 5}, 0.4, []int{0, 2}},
		{"never all", []int{3}, 0.9, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := entries(tc.per...)
			train, val := Split(es, tc.frac, 7)
			got := make([]int, len(tc.per))
			for _, e := range val {
				got[e.Label]++
			}
			if !slices.Equal(got, tc.wantVal) {
				t.Errorf("val per class %v, want %v", got, tc.wantVal)
			}
			all := append(slices.Clone(train), val...)
			sortEntries(all)
			if !slices.Equal(all, es) {
				t.Errorf("train+val is not the input")
			}
			t2, v2 := Split(es, tc.frac, 7)
			if !slices.Equal(t2, train) || !slices.Equal(v2, val) {
				t.Errorf("same seed, different split")
			}
		})
	}
	es := entries(50)
	_, a := Split(es, 0.2, 1)
	_, b := Split(es, 0.2, 2)
	if slices.Equal(a, b) {
		t.Errorf("seeds 1 and 2 chose the same 10 of 50")
	}
}

func TestReadLabels(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "l.txt")
	os.WriteFile(txt, []byte("abseiling\nair drumming\n\n"), 0o644)
	js := filepath.Join(dir, "l.json")
	os.WriteFile(js, []byte(`["abseiling", "air_drumming"]`), 0o644)
	for _, p := range []string{txt, js} {
		got, err := ReadLabels(p)
		if err != nil || len(got) != 2 || got[0] != "abseiling" {
			t.Errorf("%s: %v %v", p, got, err)
		}
	}
	dup := filepath.Join(dir, "dup.txt")
	os.WriteFile(dup, []byte("a\nb\na\n"), 0o644)
	if _, err := ReadLabels(dup); err == nil || !strings.Contains(err.Error(), dup+":3: class \"a\" already on line 1") {
		t.Errorf("duplicate: %v", err)
	}
	li := newLabelIndex([]string{"abseiling", "air drumming", "archery"})
	if i, _ := li.find("Air_Drumming"); i != 1 {
		t.Errorf("find Air_Drumming = %d", i)
	}
	if i, hint := li.find("archey"); i != -1 || !strings.Contains(hint, `did you mean "archery" (class 2)`) {
		t.Errorf("find archey = %d %q", i, hint)
	}
	if _, hint := li.find("zzzzzzzzzz"); hint != "" {
		t.Errorf("far name got a suggestion %q", hint)
	}
}

// TestWriteList: paths relative to the list, forward slashes, labels;
// unlabelled entries as bare paths.
func TestWriteList(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lists"), 0o755)
	list := filepath.Join(dir, "lists", "a.list")
	err := WriteList(list, []Entry{{filepath.Join(dir, "v", "x.mp4"), 3}, {filepath.Join(dir, "lists", "y.mp4"), -1}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(list)
	if string(b) != "../v/x.mp4 3\ny.mp4\n" {
		t.Errorf("list %q", b)
	}
	if err := WriteList(filepath.Join(dir, "nope", "a.list"), nil); err == nil {
		t.Errorf("wrote into a missing directory")
	}
	if err := WriteList(list, []Entry{{filepath.Join(dir, "a b.mp4"), 0}}); err == nil || !strings.Contains(err.Error(), "white space") {
		t.Errorf("space in a path: %v", err)
	}
}
