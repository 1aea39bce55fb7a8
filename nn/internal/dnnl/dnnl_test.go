//go:build onednn

package dnnl

import (
	"runtime"
	"strings"
	"testing"
)

// TestThreadsFollowGOMAXPROCS: oneDNN's OpenMP team is GOMAXPROCS threads,
// also after GOMAXPROCS changes, so oneDNN never runs more threads than Go.
func TestThreadsFollowGOMAXPROCS(t *testing.T) {
	s := ConvSpec{Kind: ForwardInfer, N: 2, C: 16, H: 6, W: 6, K: 16, R: 3, S: 3, Stride: 1, Pad: 1}
	p, err := NewConv(s)
	if err != nil {
		t.Fatal(err)
	}
	x, w, y := make([]float32, 2*16*36), make([]float32, 16*16*9), make([]float32, 2*16*36)
	for _, n := range []int{1, 2, 3} {
		old := runtime.GOMAXPROCS(n)
		err := p.Conv(x, w, y, nil, nil, nil)
		got := Threads()
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Errorf("GOMAXPROCS %d: oneDNN's team has %d threads", n, got)
		}
	}
	if v, isa := Version(), ISA(); !strings.HasPrefix(v, "2.") || isa == "unknown" || isa == "all" {
		t.Errorf("oneDNN %s, ISA %s", v, isa)
	}
}

// TestNewConvError: a shape oneDNN refuses is an error naming the spec,
// not a crash.
func TestNewConvError(t *testing.T) {
	_, err := NewConv(ConvSpec{Kind: Forward, N: 1, C: 3, H: 2, W: 2, K: 4, R: 5, S: 5, Stride: 1})
	if err == nil || !strings.Contains(err.Error(), "oneDNN") || !strings.Contains(err.Error(), "R:5") {
		t.Fatalf("NewConv of a 5x5 filter on a 2x2 input: %v", err)
	}
}
