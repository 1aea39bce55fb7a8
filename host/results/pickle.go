package results

import (
	"fmt"

	"github.com/zoo-ml/zoo/internal/pickle"

	"github.com/zoo-ml/zoo/internal/fsx"
)

// InferRow is one video's top-k prediction: scores descending and the
// class index of each.
type InferRow struct {
	VideoID string
	Scores  []float32
	Labels  []int
}

// WritePickle writes rows as Paddle's infer.py does (pickle.dump(results))
// but with protocol 2, which both Python 2 and 3 load: a list of tuples
// (video_id, [scores, descending], [class indices]). Scores are Python
// floats (numpy float32 .tolist() gives doubles), written as BINFLOAT of
// the exact float32 value; indices are Python ints; video ids are str
// (BINUNICODE). internal/pickle writes the stream, memo included, that
// CPython's pickle.dumps(results, protocol=2) produces for the same
// objects.
func WritePickle(path string, rows []InferRow) error {
	b, err := EncodePickle(rows)
	if err != nil {
		return err
	}
	return fsx.WriteBytes(path, fsx.Options{}, b)
}

// EncodePickle returns the bytes WritePickle writes.
func EncodePickle(rows []InferRow) ([]byte, error) {
	out := make([]any, len(rows))
	size := 16
	for i, r := range rows {
		size += 32 + len(r.VideoID) + 9*len(r.Scores) + 5*len(r.Labels)
		// float32 scores are written as the Python floats of their exact
		// values, labels as Python ints.
		out[i] = pickle.Tuple{r.VideoID, r.Scores, r.Labels}
	}
	b, err := pickle.AppendMarshal(make([]byte, 0, size), out, 2)
	if err != nil {
		return nil, fmt.Errorf("infer pickle: %w", err)
	}
	return b, nil
}
