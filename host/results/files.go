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

// InferSummary is the content of save_dir/TSM_infer_summary.json: what an
// infer pass read and where its time went. Seconds is the pass's wall
// time as the host saw it (the plugin's Run, from the call to its last
// event; not the plugin's start, weight loading or graph building), and
// ClipsPerS is Videos over Seconds. Extra holds the sums over the pass of
// the metrics of the plugin's infer steps (docs/plugins.md, Metrics);
// TSM sends decode_s (the reader's busy time, summed over its workers),
// decode_wait_s (what the forward passes waited for the reader) and
// forward_s (the network's forward passes). In JSON they are fields of
// the object itself, after the fixed ones, in name order.
type InferSummary struct {
	Videos    int                `json:"videos"`
	Skipped   int                `json:"skipped"` // inputs that could not be read
	Seconds   float64            `json:"seconds"`
	ClipsPerS float64            `json:"clips_per_s"`
	Extra     map[string]float64 `json:"-"`
}

// summaryFields are InferSummary's fixed JSON fields.
var summaryFields = map[string]bool{"videos": true, "skipped": true, "seconds": true, "clips_per_s": true}

type inferSummaryJSON struct {
	Videos    int      `json:"videos"`
	Skipped   int      `json:"skipped"`
	Seconds   *float64 `json:"seconds"`
	ClipsPerS *float64 `json:"clips_per_s"`
}

// MarshalJSON writes Extra's metrics as fields of their own, non-finite
// values as null.
func (s InferSummary) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(inferSummaryJSON{s.Videos, s.Skipped, finite(s.Seconds), finite(s.ClipsPerS)})
	if err != nil {
		return nil, err
	}
	return appendExtra(b, s.Extra, summaryFields), nil
}

// UnmarshalJSON reads fields other than the fixed ones into Extra.
func (s *InferSummary) UnmarshalJSON(b []byte) error {
	var j inferSummaryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	extra, err := readExtra(b, summaryFields)
	if err != nil {
		return err
	}
	*s = InferSummary{j.Videos, j.Skipped, orNaN(j.Seconds), orNaN(j.ClipsPerS), extra}
	return nil
}
