package tsm

import (
	"math/rand/v2"
)

// The built-in dataset. A clip shows a vertical bar that steps across P
// positions of the frame, one step per frame, wrapping around: position
// p_t = (p_0 + d*t) mod P with p_0 uniform. The class is the step d. With P
// equal to seg_num and every step coprime to P, each clip visits every
// position exactly once, so the SET of frames of a clip has the same
// distribution in every class: only the order of the frames tells the
// classes apart. A frame-level model that averages over segments (TSN)
// cannot beat chance; TSM, which mixes neighbouring frames, can.
var synthClasses = []struct {
	name string
	step int // in positions, for P = 8
}{
	{"right by 1", 1},
	{"right by 3", 3},
	{"left by 3", -3},
	{"left by 1", -1},
}

// synthLabels are the built-in dataset's class names.
func synthLabels() []string {
	out := make([]string, len(synthClasses))
	for i, c := range synthClasses {
		out[i] = c.name
	}
	return out
}

// Splits get disjoint seeds so valid and test clips are never trained on.
const (
	splitTrain = iota + 1
	splitValid
	splitTest
	splitInfer
)

// synthClip writes clip i of a split into dst ([segNum, 3, size, size],
// already normalised) and returns its label. Clips are a pure function of
// (split, i): the dataset does not depend on the run's seed.
func synthClip(dst []float32, split, i, segNum, size int, noise float64) int {
	r := rand.New(rand.NewPCG(uint64(split), uint64(i)))
	label := r.IntN(len(synthClasses))
	positions := segNum
	step := ((synthClasses[label].step % positions) + positions) % positions
	p0 := r.IntN(positions)
	// A bar of random colour and vertical extent, the same in every frame.
	var colour [3]float32
	for c := range colour {
		colour[c] = float32(0.5 + 1.5*r.Float64())
	}
	top := r.IntN(size / 2)
	bottom := top + size/3 + r.IntN(size-top-size/3+1)
	barW := max(size/positions, 1)
	plane := size * size
	for t := 0; t < segNum; t++ {
		x0 := ((p0 + step*t) % positions) * size / positions
		frame := dst[t*3*plane : (t+1)*3*plane]
		for c := 0; c < 3; c++ {
			ch := frame[c*plane : (c+1)*plane]
			for y := 0; y < size; y++ {
				row := ch[y*size : (y+1)*size]
				for x := range row {
					v := float32(r.NormFloat64() * noise)
					if y >= top && y < bottom && x >= x0 && x < x0+barW {
						v += colour[c]
					}
					row[x] = v
				}
			}
		}
	}
	return label
}
