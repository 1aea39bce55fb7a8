package resnet

// FLOPs returns the floating-point operations per clip of a forward pass
// and of a training step (forward, both gradients, no optimizer), a
// multiply-add counted as two. Only the convolutions and the fc are
// counted: batch norm, ReLU, pooling and the shift are a few operations per
// activation, well under 1% of the convolutions' work. A training step
// computes each conv's filter gradient and, except for the stem's, its
// data gradient, each as much work as the conv itself.
func (c Config) FLOPs() (forward, train int64) {
	c = c.withDefaults()
	a := layout(c)
	frames := int64(c.SegNum)
	conv := func(s convSpec, h, w int) (int64, int, int) {
		oh, ow := (h+2*s.pd-s.k)/s.stride+1, (w+2*s.pd-s.k)/s.stride+1
		return 2 * int64(s.cout*s.cin*s.k*s.k) * int64(oh*ow) * frames, oh, ow
	}
	f, h, w := conv(a.stem, c.Height, c.Width)
	forward, train = f, 2*f
	h, w = (h+2-3)/2+1, (w+2-3)/2+1 // max pool 3x3/2, pad 1
	for _, b := range a.blocks {
		bh, bw := h, w
		for _, s := range b.convs {
			f, bh, bw = conv(s, bh, bw)
			forward, train = forward+f, train+3*f
		}
		if b.short != nil {
			f, _, _ = conv(*b.short, h, w)
			forward, train = forward+f, train+3*f
		}
		h, w = bh, bw
	}
	fc := 2 * int64(a.features*c.NumClasses)
	return forward + fc, train + 3*fc
}
