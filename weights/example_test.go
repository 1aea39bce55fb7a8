package weights_test

import (
	"context"
	"fmt"
	"log"

	"github.com/zoo-ml/zoo/weights"
)

// A loader checks the variables a model needs and ignores the rest.
func ExampleLoad() {
	want := map[string]weights.Spec{
		"conv1_weights":  {DType: weights.FP32, Dims: []int64{64, 3, 7, 7}},
		"bn_conv1_scale": {DType: weights.FP32, Dims: []int64{64}},
	}
	ts, extra, err := weights.Load("/home/me/.paddle/weights/ResNet50_pretrained", want)
	if err != nil {
		log.Fatal(err) // e.g. weights: conv1_weights in DIR: shape [64 3 3 3], want [64 3 7 7]
	}
	w, _ := ts["conv1_weights"].Float32s()
	fmt.Println(len(w), len(extra), "other variables ignored")
}

// The host resolves a weight set, fetching it when absent.
func ExampleStore_Fetch() {
	st := weights.FromEnv() // ZOO_WEIGHTS_DIR, ZOO_WEIGHTS_MIRROR, ZOO_OFFLINE
	st.Progress = func(e weights.ProgressEvent) {
		if e.Phase == weights.PhaseDownload && e.Total > 0 && e.Rate > 0 {
			fmt.Printf("%s %d/%d bytes, ETA %.0fs\n", e.Set, e.Done, e.Total, float64(e.Total-e.Done)/e.Rate)
		}
	}
	dir, err := st.Fetch(context.Background(), weights.Set{
		Name:     "tsm_kinetics",
		Model:    "TSM",
		URL:      "https://paddlemodels.bj.bcebos.com/video_classification/tsm_kinetics.tar.gz",
		Use:      "weights",
		Required: []string{"conv1_weights", "fc_0.w_0", "fc_0.b_0"},
	})
	if err != nil {
		log.Fatal(err) // names the URL, the directory and `zoo weights import`
	}
	fmt.Println(dir)
}
