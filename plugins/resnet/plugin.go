package resnet

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

// Version is the ResNet plugin's version.
const Version = "0.1.0"

//go:embed labels/imagenet_labels.json
var imagenetJSON []byte

// publishedSets: Paddle's ImageNet ResNet-50, whose fc_0 is the 1000-class
// ImageNet head. Paddle pins no checksum; the weights store records the
// first download's sha256 and checks it afterwards.
var publishedSets = []sdk.WeightSet{{
	Name: "ResNet50_pretrained", Use: sdk.UseWeights, Dir: "ResNet50_pretrained",
	URL:         "https://paddlemodels.bj.bcebos.com/video_classification/ResNet50_pretrained.tar.gz",
	Description: "ImageNet ResNet-50 (1000 classes, fc_0.w_0 [2048,1000]) for test and infer at num_layers 50",
	Required:    []string{"conv1_weights", "res5c_branch2c_weights", "fc_0.w_0", "fc_0.b_0"},
}}

// weightSets returns the published set with every variable ResNet-50 of
// 1000 classes reads from it, the ImageNet head included.
func weightSets() ([]sdk.WeightSet, error) {
	ts, err := classifier.TensorSpecs(resnet.Config{Depth: 50, NumClasses: 1000, NoDropout: true}, classifier.All)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(publishedSets)
	for i := range out {
		out[i].Tensors = ts
	}
	return out, nil
}

// Provider serves the ResNet model.
type Provider struct{}

var _ sdk.Provider = Provider{}

// ImageNetLabels returns the 1000 ImageNet-1k class names in index order.
func ImageNetLabels() ([]string, error) {
	var labels []string
	if err := json.Unmarshal(imagenetJSON, &labels); err != nil {
		return nil, fmt.Errorf("built-in ImageNet labels: %w", err)
	}
	if len(labels) != 1000 {
		return nil, fmt.Errorf("built-in ImageNet labels: %d names, want 1000", len(labels))
	}
	return labels, nil
}

// Info describes the ResNet model.
func Info() (sdk.ModelInfo, error) {
	labels, err := ImageNetLabels()
	if err != nil {
		return sdk.ModelInfo{}, err
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
		Name:          "ResNet",
		Version:       Version,
		Description:   "ResNet-18/34/50/101/152 image classifier, PaddlePaddle-exact, with Paddle's ImageNet preprocessing",
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
	if req.Model != "ResNet" {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeNotFound, "this plugin serves ResNet, not %q", req.Model)
	}
	return open(ctx, req)
}
