package results

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes a file through write and puts it at path only once
// it is complete and synced: the data goes to a temporary file in the same
// directory (so the rename cannot cross file systems), which is fsynced,
// renamed over path, and the directory fsynced. On any error path is left as
// it was and the temporary file is removed. The file gets mode 0644.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is durable only once the directory is synced. That is best
	// effort: some file systems cannot sync a directory, and the file's data
	// is already safe.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// WriteJSON writes v as indented JSON followed by a newline, atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	b = append(b, '\n')
	return WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
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
