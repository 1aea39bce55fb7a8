package resnet

import (
	"fmt"
	"slices"
	"testing"
)

// TestParamShapes: the shapes plugins publish for their weight sets are the
// parameters New creates.
func TestParamShapes(t *testing.T) {
	for _, depth := range []int{18, 34, 50, 101, 152} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			c := Config{Depth: depth, NumClasses: 7, BaseWidth: 4, BatchSize: 1, Height: 8, Width: 8}
			m, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got, err := c.ParamShapes()
			if err != nil {
				t.Fatal(err)
			}
			ps := m.Params()
			if len(got) != len(ps) {
				t.Fatalf("%d shapes, New has %d parameters", len(got), len(ps))
			}
			for i, p := range ps {
				if got[i].Name != p.Name || !slices.Equal(got[i].Shape, p.Shape) {
					t.Fatalf("shape %d: %s %v, New has %s %v", i, got[i].Name, got[i].Shape, p.Name, p.Shape)
				}
			}
		})
	}
	if _, err := (Config{Depth: 51, NumClasses: 1}).ParamShapes(); err == nil {
		t.Error("depth 51 accepted")
	}
}
