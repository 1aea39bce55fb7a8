package resnet

import (
	"math"
	"math/rand/v2"
)

// The built-in dataset: stripes of a random colour, period and phase over
// noise; the class is the stripes' orientation. Colour, period and phase
// carry no label, so a model must learn oriented edges, which a narrow
// ResNet-18 does in a few hundred steps.
var synthClasses = []struct {
	name   string
	dx, dy float64 // the direction the stripes vary along
}{
	{"horizontal stripes", 0, 1},
	{"vertical stripes", 1, 0},
	{"diagonal stripes", math.Sqrt2 / 2, math.Sqrt2 / 2},
	{"anti-diagonal stripes", math.Sqrt2 / 2, -math.Sqrt2 / 2},
}

func synthLabels() []string {
	out := make([]string, len(synthClasses))
	for i, c := range synthClasses {
		out[i] = c.name
	}
	return out
}

// Splits get disjoint seeds so valid and test images are never trained on.
const (
	splitTrain = iota + 1
	splitValid
	splitTest
	splitInfer
)

// synthImage writes image i of a split into dst ([3, size, size], already
// normalised) and returns its label. Images are a pure function of
// (split, i): the dataset does not depend on the run's seed.
func synthImage(dst []float32, split, i, size int, noise float64) int {
	r := rand.New(rand.NewPCG(uint64(split)<<32|0x1a9e, uint64(i)))
	label := r.IntN(len(synthClasses))
	c := synthClasses[label]
	period := 4 + 4*r.Float64()
	phase := 2 * math.Pi * r.Float64()
	var colour [3]float32
	for ch := range colour {
		colour[ch] = float32(0.5 + 1.5*r.Float64())
	}
	plane := size * size
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			on := math.Sin(2*math.Pi*(c.dx*float64(x)+c.dy*float64(y))/period+phase) > 0
			for ch := 0; ch < 3; ch++ {
				v := float32(r.NormFloat64() * noise)
				if on {
					v += colour[ch]
				}
				dst[ch*plane+y*size+x] = v
			}
		}
	}
	return label
}
