package ops

import (
	"math/rand"
	"slices"
	"testing"
)

func randF32(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// blockedIndex is the offset of element (n, ch, p) (p the pixel within
// the H x W plane) of an nChw16c tensor with c channels and hw pixels.
func blockedIndex(c, hw, n, ch, p int) int {
	return ((n*(c/16)+ch/16)*hw+p)*16 + ch%16
}

// TestBlockedIndex pins nChw16c's order by hand: [N][C/16][H][W][16].
func TestBlockedIndex(t *testing.T) {
	// c = 32, hw = 3: element (n=1, ch=17, p=2) is in image 1's second
	// block (1*2+1 = 3 blocks of 3*16 before it), pixel 2, lane 1.
	if got, want := blockedIndex(32, 3, 1, 17, 2), 3*48+2*16+1; got != want {
		t.Fatalf("blockedIndex = %d, want %d", got, want)
	}
	n, c, hw := 2, 32, 3
	x := make([]float32, n*c*hw)
	for i := range x {
		x[i] = float32(i) // NCHW: (n*c+ch)*hw+p
	}
	b := make([]float32, len(x))
	ToBlocked16(n, c, hw, x, b)
	for in := range n {
		for ch := range c {
			for p := range hw {
				if got, want := b[blockedIndex(c, hw, in, ch, p)], x[(in*c+ch)*hw+p]; got != want {
					t.Fatalf("ToBlocked16: (%d,%d,%d) = %v, want %v", in, ch, p, got, want)
				}
			}
		}
	}
	back := make([]float32, len(x))
	ToNCHW(n, c, hw, b, back)
	if !slices.Equal(back, x) {
		t.Fatal("ToNCHW(ToBlocked16(x)) != x")
	}
}

// TestShiftBlocked16MatchesShift: the shift on nChw16c equals Shift on
// NCHW, both directions, for channel ranges in whole blocks and ranges
// that split a block (C/8 = 8 of 64 channels, as in a 64-channel stage).
func TestShiftBlocked16MatchesShift(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, tc := range []struct{ nt, t, c, hw, c1, c2 int }{
		{8, 4, 64, 5, 8, 16},
		{6, 3, 128, 4, 16, 32},
		{4, 2, 32, 3, 3, 7},
		{4, 4, 16, 2, 0, 0},
	} {
		for _, back := range []bool{false, true} {
			n := tc.nt * tc.c * tc.hw
			x := randF32(rng, n)
			want := make([]float32, n)
			Shift(tc.nt, tc.t, tc.c, tc.hw, tc.c1, tc.c2, back, x, want)
			xb, yb, got := make([]float32, n), make([]float32, n), make([]float32, n)
			ToBlocked16(tc.nt, tc.c, tc.hw, x, xb)
			for i := range yb {
				yb[i] = 99 // every element is written
			}
			ShiftBlocked16(tc.nt, tc.t, tc.c, tc.hw, tc.c1, tc.c2, back, xb, yb)
			ToNCHW(tc.nt, tc.c, tc.hw, yb, got)
			if !slices.Equal(got, want) {
				t.Fatalf("%+v back %v: blocked shift differs from Shift", tc, back)
			}
		}
	}
}

// TestGapBlocked16MatchesGap: the global average pool and its gradient on
// nChw16c equal gap on NCHW.
func TestGapBlocked16MatchesGap(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	n, c, hw := 3, 48, 5
	x := randF32(rng, n*c*hw)
	xb := make([]float32, len(x))
	ToBlocked16(n, c, hw, x, xb)
	want, got := make([]float32, n*c), make([]float32, n*c)
	gap(n*c, hw, false, x, want)
	gapBlocked16(n, c, hw, false, xb, got)
	if !slices.Equal(got, want) {
		t.Fatalf("forward: %v, want %v", got, want)
	}
	dy := randF32(rng, n*c)
	wantDx, gotB, gotDx := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
	gap(n*c, hw, true, dy, wantDx)
	gapBlocked16(n, c, hw, true, dy, gotB)
	ToNCHW(n, c, hw, gotB, gotDx)
	if !slices.Equal(gotDx, wantDx) {
		t.Fatal("backward differs")
	}
}
