package resnet

// ParamShape is the name and shape of one parameter.
type ParamShape struct {
	Name  string
	Shape []int
}

// ParamShapes returns what New(c).Params() would hold, names and shapes in
// the same order, without allocating any value: plugins describe their
// weight sets with it.
func (c Config) ParamShapes() ([]ParamShape, error) {
	c = c.withDefaults()
	if c.BatchSize == 0 && c.Height == 0 && c.Width == 0 {
		c.BatchSize, c.Height, c.Width = 1, 1, 1 // the input shape has no parameters
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	a := layout(c)
	var out []ParamShape
	convBN := func(s convSpec) {
		out = append(out, ParamShape{s.name + "_weights", []int{s.cout, s.cin, s.k, s.k}})
		bn := bnName(s.name)
		for _, suffix := range []string{"_scale", "_offset", "_mean", "_variance"} {
			out = append(out, ParamShape{bn + suffix, []int{s.cout}})
		}
	}
	convBN(a.stem)
	for _, b := range a.blocks {
		for _, s := range b.convs {
			convBN(s)
		}
		if b.short != nil {
			convBN(*b.short)
		}
	}
	out = append(out, ParamShape{"fc_0.w_0", []int{a.features, c.NumClasses}}, ParamShape{"fc_0.b_0", []int{c.NumClasses}})
	return out, nil
}
