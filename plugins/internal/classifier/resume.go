package classifier

// StepSeed is the dropout seed of one training step: a function of the
// run's seed, the epoch and the step within it, so that a step draws the
// same mask however the run got there (straight through, or resumed from
// a checkpoint saved after any step). A mask stream carried from step to
// step would make a resumed run depend on how many draws the model made
// before the interruption. splitmix64's finaliser spreads the three words
// over all 64 bits; math/rand seeds from the value modulo 2^31-1.
func StepSeed(seed int64, epoch int, step int64) int64 {
	x := uint64(seed)
	for _, w := range []uint64{uint64(epoch), uint64(step)} {
		x += 0x9e3779b97f4a7c15 + w
		x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
		x = (x ^ x>>27) * 0x94d049bb133111eb
		x ^= x >> 31
	}
	return int64(x >> 1)
}
