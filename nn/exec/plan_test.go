package exec

import (
	"math/rand"
	"slices"
	"testing"
)

// TestPackByHand: a case worked out on paper (largest first; B must go
// above A and C, which share offset 0 because A is dead when C starts).
func TestPackByHand(t *testing.T) {
	vs := []Interval{{0, 2, 4}, {1, 3, 2}, {3, 5, 4}, {4, 5, 1}}
	off, total := Pack(vs)
	if want := []int{0, 4, 0, 4}; !slices.Equal(off, want) || total != 6 {
		t.Errorf("Pack = %v, %d; want %v, 6", off, total, []int{0, 4, 0, 4})
	}
	if p := PeakLive(vs); p != 6 {
		t.Errorf("PeakLive = %d, want 6", p)
	}
}

// TestPackNeverOverlapsLiveValues: random lifetimes and sizes; no two
// values whose lifetimes meet share a unit, and the buffer is at least
// the peak of live units.
func TestPackNeverOverlapsLiveValues(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for range 200 {
		vs := make([]Interval, 1+r.Intn(40))
		for i := range vs {
			s := r.Intn(50)
			vs[i] = Interval{Start: s, End: s + r.Intn(10), Size: 1 + r.Intn(100)}
		}
		off, total := Pack(vs)
		for i := range vs {
			if off[i] < 0 || off[i]+vs[i].Size > total {
				t.Fatalf("%v at %d outside [0, %d)", vs[i], off[i], total)
			}
			for j := range i {
				if vs[i].meets(vs[j]) && off[i] < off[j]+vs[j].Size && off[j] < off[i]+vs[i].Size {
					t.Fatalf("%v at %d and %v at %d share memory", vs[i], off[i], vs[j], off[j])
				}
			}
		}
		if total < PeakLive(vs) {
			t.Fatalf("total %d below the peak %d", total, PeakLive(vs))
		}
	}
}
