package sdk

import (
	"reflect"
	"testing"
)

// TestWeightSetRoundTrip: a weight set's tensors cross the protocol whole.
func TestWeightSetRoundTrip(t *testing.T) {
	in := ModelInfo{Name: "M", WeightSets: []WeightSet{{
		Name: "w", URL: "http://x/w.tar.gz", Dir: "w", Use: UseWeights, Required: []string{"a"},
		Tensors: []TensorSpec{{Name: "a", DType: "FP32", Shape: []int64{2048, 400}}, {Name: "b", DType: "INT64", Shape: []int64{1}}},
	}}}
	p, err := modelToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := modelFromProto(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.WeightSets, in.WeightSets) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out.WeightSets, in.WeightSets)
	}
}
