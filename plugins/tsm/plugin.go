package tsm

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
)

// Version is the TSM plugin's version.
const Version = "0.1.0"

//go:embed labels/kinetics_labels.json
var kineticsJSON []byte

// Weight sets Paddle publishes for TSM. Paddle pins no checksums; zoo's
// store records the first download's sha256 and checks it afterwards. Their
// Tensors come from the model each set fits (weightSets).
var publishedSets = []sdk.WeightSet{
	{
		Name: "ResNet50_pretrained", Use: sdk.UsePretrain, Dir: "ResNet50_pretrained",
		URL:         "https://paddlemodels.bj.bcebos.com/video_classification/ResNet50_pretrained.tar.gz",
		Description: "ImageNet ResNet-50: initialises every TSM variable but fc_0",
		Required:    []string{"conv1_weights", "bn_conv1_scale", "res5c_branch2c_weights"},
	},
	{
		Name: "tsm_kinetics", Use: sdk.UseWeights, Dir: "tsm_kinetics",
		URL:         "https://paddlemodels.bj.bcebos.com/video_classification/tsm_kinetics.tar.gz",
		Description: "TSM-ResNet-50 trained on Kinetics-400 (top-1 0.70 at seg_num 8, 224)",
		Required:    []string{"conv1_weights", "res5c_branch2c_weights", "fc_0.w_0", "fc_0.b_0"},
	},
}

// weightSets returns the published sets with every variable TSM reads from
// them: ResNet50_pretrained initialises all of TSM-ResNet-50 but fc_0 (a
// backbone's shapes do not depend on the classes), tsm_kinetics is the whole
// TSM-ResNet-50 of Kinetics-400.
func weightSets() ([]sdk.WeightSet, error) {
	r50 := resnet.Config{Depth: 50, NumClasses: 400, TemporalShift: true}
	keep := map[string]func(string) bool{"ResNet50_pretrained": classifier.NotFC, "tsm_kinetics": classifier.All}
	out := slices.Clone(publishedSets)
	for i := range out {
		ts, err := classifier.TensorSpecs(r50, keep[out[i].Name])
		if err != nil {
			return nil, fmt.Errorf("weight set %s: %w", out[i].Name, err)
		}
		out[i].Tensors = ts
	}
	return out, nil
}

// Provider serves the TSM model.
type Provider struct{}

var _ sdk.Provider = Provider{}

// Info describes the TSM model.
func Info() (sdk.ModelInfo, error) {
	var labels []string
	if err := json.Unmarshal(kineticsJSON, &labels); err != nil {
		return sdk.ModelInfo{}, fmt.Errorf("built-in Kinetics labels: %w", err)
	}
	sets, err := weightSets()
	if err != nil {
		return sdk.ModelInfo{}, err
	}
	schema, err := Schema()
	if err != nil {
		return sdk.ModelInfo{}, err
	}
	return sdk.ModelInfo{
		Name:          "TSM",
		Version:       Version,
		Description:   "Temporal Shift Module video classifier (ResNet + temporal shift), PaddlePaddle-exact",
		Tasks:         []string{sdk.ModeTrain, sdk.ModeTest, sdk.ModeInfer},
		Config:        schema,
		DefaultConfig: DefaultJob(),
		WeightSets:    sets,
		Labels:        labels,
	}, nil
}

func (Provider) Models(context.Context) ([]sdk.ModelInfo, error) {
	m, err := Info()
	if err != nil {
		return nil, err
	}
	return []sdk.ModelInfo{m}, nil
}

func (Provider) Open(ctx context.Context, req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	if req.Model != "TSM" {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeNotFound, "this plugin serves TSM, not %q", req.Model)
	}
	return open(ctx, req)
}
