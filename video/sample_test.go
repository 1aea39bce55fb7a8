package video

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The rules checked here are mp4_loader's and video_loader's in
// PaddlePaddle/models @ 4d7ec517db : PaddleCV/video/reader/kinetics_reader.py:
//
//	average_dur = int(len(frames) / nsample)
//	train:  idx = random.randint(0, average_dur - seglen) + i*average_dur
//	eval:   idx = (average_dur - 1) // 2 + i*average_dur      (mp4_loader)
//	        idx = (average_dur - seglen) // 2 + i*average_dur (video_loader)
//	if average_dur < seglen: idx = i*average_dur; if average_dur == 0: idx = i
//	frames[jj % len(frames)] for jj in range(idx, idx + seglen)

// seq returns start, start+step, ... (n values).
func seq(start, step, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = start + i*step
	}
	return s
}

func TestSampleIndicesEval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		n, segNum, segLen int
		want, wantPKL     []int
	}{
		// The real videos' frame counts, seg_num 8 (see TestRealVideos).
		{"part_0", 32, 8, 1, seq(1, 4, 8), seq(1, 4, 8)},
		{"archery", 131, 8, 1, seq(7, 16, 8), seq(7, 16, 8)},
		{"test.avi", 164, 8, 1, seq(9, 20, 8), seq(9, 20, 8)},
		{"arm_wrestling", 280, 8, 1, seq(17, 35, 8), seq(17, 35, 8)},
		{"test.mp4", 300, 8, 1, seq(18, 37, 8), seq(18, 37, 8)},
		// avg 1: (1-1)//2 = 0.
		{"avg1", 9, 8, 1, seq(0, 1, 8), seq(0, 1, 8)},
		// avg 0: segment i takes frame i, wrapping modulo n.
		{"avg0", 32, 64, 1, append(seq(0, 1, 32), seq(0, 1, 32)...), append(seq(0, 1, 32), seq(0, 1, 32)...)},
		{"avg0_tiny", 3, 8, 1, []int{0, 1, 2, 0, 1, 2, 0, 1}, []int{0, 1, 2, 0, 1, 2, 0, 1}},
		// avg 4 < seglen 5: start i*avg, the last segment wraps.
		{"avg<seglen", 32, 8, 5,
			[]int{0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 11, 12, 12, 13, 14, 15, 16, 16, 17, 18, 19, 20, 20, 21, 22, 23, 24, 24, 25, 26, 27, 28, 28, 29, 30, 31, 0},
			nil},
		// seglen 3, avg 10: mp4 starts at (10-1)//2 = 4, pkl at (10-3)//2 = 3.
		{"seglen3", 80, 8, 3,
			[]int{4, 5, 6, 14, 15, 16, 24, 25, 26, 34, 35, 36, 44, 45, 46, 54, 55, 56, 64, 65, 66, 74, 75, 76},
			[]int{3, 4, 5, 13, 14, 15, 23, 24, 25, 33, 34, 35, 43, 44, 45, 53, 54, 55, 63, 64, 65, 73, 74, 75}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []Mode{Valid, Test, Infer} {
				if got := SampleIndices(m, tc.n, tc.segNum, tc.segLen, nil); !slices.Equal(got, tc.want) {
					t.Errorf("%s: SampleIndices = %v, want %v", m, got, tc.want)
				}
			}
			if tc.wantPKL == nil {
				tc.wantPKL = tc.want
			}
			if got := SampleIndicesPKL(Test, tc.n, tc.segNum, tc.segLen, nil); !slices.Equal(got, tc.wantPKL) {
				t.Errorf("SampleIndicesPKL = %v, want %v", got, tc.wantPKL)
			}
		})
	}
}

// TestSampleIndicesTrain checks train's bounds (segment i draws from
// [i*avg, i*avg + avg - seglen], both ends inclusive like randint) and that
// every offset comes up about equally often.
func TestSampleIndicesTrain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n, segNum, segLen int
	}{
		{280, 8, 1}, {32, 8, 1}, {131, 8, 1}, {80, 8, 3}, {17, 8, 2},
	} {
		avg := tc.n / tc.segNum
		span := avg - tc.segLen + 1
		rng := rand.New(rand.NewPCG(1, 2))
		counts := make([]int, span)
		const draws = 4000
		for d := 0; d < draws; d++ {
			idx := SampleIndices(Train, tc.n, tc.segNum, tc.segLen, rng)
			if len(idx) != tc.segNum*tc.segLen {
				t.Fatalf("n=%d: %d indices", tc.n, len(idx))
			}
			for i := 0; i < tc.segNum; i++ {
				seg := idx[i*tc.segLen : (i+1)*tc.segLen]
				off := seg[0] - i*avg
				if off < 0 || off >= span {
					t.Fatalf("n=%d seg_num=%d seglen=%d: segment %d starts at %d, outside [%d, %d]", tc.n, tc.segNum, tc.segLen, i, seg[0], i*avg, i*avg+span-1)
				}
				for j := range seg {
					if seg[j] != seg[0]+j {
						t.Fatalf("segment %d is not consecutive: %v", i, seg)
					}
				}
				counts[off]++
			}
		}
		// Each offset is expected draws*segNum/span times; allow 25%.
		exp := float64(draws*tc.segNum) / float64(span)
		for off, c := range counts {
			if float64(c) < 0.75*exp || float64(c) > 1.25*exp {
				t.Errorf("n=%d: offset %d drawn %d times, expected about %.0f", tc.n, off, c, exp)
			}
		}
	}
	// The short-video rules use no randomness in train either.
	if got := SampleIndices(Train, 32, 64, 1, nil); !slices.Equal(got, append(seq(0, 1, 32), seq(0, 1, 32)...)) {
		t.Errorf("train, avg 0: %v", got)
	}
	if got := SampleIndices(Train, 32, 8, 5, nil); got[35] != 28 || got[39] != 0 {
		t.Errorf("train, avg < seglen: last segment %v, want 28 29 30 31 0", got[35:])
	}
}

func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, m := range []Mode{Train, Valid, Test, Infer} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if m, err := ParseMode("TEST"); err != nil || m != Test {
		t.Errorf("ParseMode(TEST) = %v, %v", m, err)
	}
	if _, err := ParseMode("eval"); err == nil {
		t.Error("ParseMode(eval): no error")
	}
}
