//go:build zoocuda

package resnet

// This file exists only in the zoocuda build: it exposes the model's layout
// to nn/cuda, which runs the same network with its own GPU kernels. The
// CPU build keeps the layout private.

// ConvUnit is one conv+BN(+ReLU) unit: the conv's filter is
// Name+"_weights", the batch norm's parameters BN+"_scale", "_offset",
// "_mean" and "_variance".
type ConvUnit struct {
	Name, BN                  string
	K, Cin, Cout, Stride, Pad int
	ReLU                      bool
}

// Block is one residual block: Convs in order, Short the projection
// shortcut or nil for identity.
type Block struct {
	Name  string
	Convs []ConvUnit
	Short *ConvUnit
}

// Layout is the network between the input and the fc layer.
type Layout struct {
	Stem     ConvUnit
	Blocks   []Block
	Features int // channels into the fc
}

func unitOf(s convSpec) ConvUnit {
	return ConvUnit{Name: s.name, BN: bnName(s.name), K: s.k, Cin: s.cin, Cout: s.cout, Stride: s.stride, Pad: s.pd, ReLU: s.relu}
}

// Layout returns the model's layout (stem, residual blocks, features).
func (m *Model) Layout() Layout {
	l := Layout{Stem: unitOf(m.arch.stem), Features: m.arch.features}
	for _, b := range m.arch.blocks {
		nb := Block{Name: b.name}
		for _, s := range b.convs {
			nb.Convs = append(nb.Convs, unitOf(s))
		}
		if b.short != nil {
			u := unitOf(*b.short)
			nb.Short = &u
		}
		l.Blocks = append(l.Blocks, nb)
	}
	return l
}
