package optim

// Piecewise is fluid's piecewise_decay: at iteration step (counted from 0)
// the rate is Values[i] for the first i with step < Boundaries[i], and
// the last value after all boundaries. len(Values) = len(Boundaries)+1.
type Piecewise struct {
	Boundaries []int
	Values     []float64
}

// At returns the learning rate of iteration step.
func (p Piecewise) At(step int) float64 {
	for i, b := range p.Boundaries {
		if step < b {
			return p.Values[i]
		}
	}
	return p.Values[len(p.Values)-1]
}

// TSMSchedule is the schedule of Paddle's TSM train config: boundaries at
// epoch*(totalVideos/batchSize+1) iterations for each of decayEpochs, and
// values lr, lr*decay, lr*decay², ...
func TSMSchedule(lr, decay float64, decayEpochs []int, totalVideos, batchSize int) Piecewise {
	perEpoch := totalVideos/batchSize + 1
	p := Piecewise{Values: []float64{lr}}
	for _, e := range decayEpochs {
		p.Boundaries = append(p.Boundaries, e*perEpoch)
		lr *= decay
		p.Values = append(p.Values, lr)
	}
	return p
}
