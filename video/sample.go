package video

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Mode is the phase a reader serves; it picks the sampling rule and the
// augmentation.
type Mode int

// The modes of Paddle's config sections.
const (
	Train Mode = iota
	Valid
	Test
	Infer
)

func (m Mode) String() string {
	switch m {
	case Train:
		return "train"
	case Valid:
		return "valid"
	case Test:
		return "test"
	case Infer:
		return "infer"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode reads "train", "valid", "test" or "infer", in any case.
func ParseMode(s string) (Mode, error) {
	for m := Train; m <= Infer; m++ {
		if strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (want train, valid, test or infer)", s)
}

// SampleIndices returns the seg_num*seglen frame indices that Paddle's
// mp4_loader (PaddlePaddle/models @ 4d7ec517db,
// PaddleCV/video/reader/kinetics_reader.py) reads from a video of n decoded
// frames. With avg = n/segNum
// (floor), segment i starts at
//
//	train:             randint(0, avg-segLen) + i*avg
//	valid/test/infer:  (avg-1)/2 + i*avg
//	if avg < segLen:   i*avg
//	if avg == 0:       i
//
// and takes segLen consecutive frames, each index modulo n. rng is only used
// in Train mode.
func SampleIndices(mode Mode, n, segNum, segLen int, rng *rand.Rand) []int {
	return sampleIndices(mode, n, segNum, segLen, rng, false)
}

// SampleIndicesPKL is video_loader's variant for pkl lists, which differs
// in one place: the evaluation start is (avg-segLen)/2 + i*avg. The two
// agree for segLen 1.
func SampleIndicesPKL(mode Mode, n, segNum, segLen int, rng *rand.Rand) []int {
	return sampleIndices(mode, n, segNum, segLen, rng, true)
}

func sampleIndices(mode Mode, n, segNum, segLen int, rng *rand.Rand, pkl bool) []int {
	if n <= 0 || segNum <= 0 || segLen <= 0 {
		panic(fmt.Sprintf("video: sample %d frames into %d segments of %d", n, segNum, segLen))
	}
	avg := n / segNum
	idx := make([]int, 0, segNum*segLen)
	for i := 0; i < segNum; i++ {
		var start int
		switch {
		case avg >= segLen && mode == Train:
			start = randint(rng, 0, avg-segLen) + i*avg
		case avg >= segLen && pkl:
			start = (avg-segLen)/2 + i*avg
		case avg >= segLen:
			start = (avg-1)/2 + i*avg
		case avg >= 1:
			start = i * avg
		default:
			start = i
		}
		for j := start; j < start+segLen; j++ {
			idx = append(idx, j%n)
		}
	}
	return idx
}
