package results

import (
	"encoding/json"
	"fmt"

	"github.com/zoo-ml/zoo/internal/fsx"
)

// WriteJSON writes v as indented JSON followed by a newline, atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fsx.WriteBytes(path, fsx.Options{}, append(b, '\n'))
}

// TestResult is the content of save_dir/TSM_test_result.json: loss and
// accuracies averaged over every video of the list, accuracies as fractions.
type TestResult struct {
	Videos int     `json:"videos"`
	Loss   float64 `json:"loss"`
	Top1   float64 `json:"top1"`
	Top5   float64 `json:"top5"`
}

// InferRecord is one element of save_dir/TSM_infer_result.json.
type InferRecord struct {
	VideoID string    `json:"video_id"`
	Scores  []float32 `json:"scores"`
	Labels  []int     `json:"labels"`
	Names   []string  `json:"names"`
}
