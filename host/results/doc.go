// Package results writes the files a zoo run leaves behind, and draws its
// progress: the infer pickle Paddle's infer.py writes (TSM_infer_result), the
// JSON results, metrics.jsonl with one Event per log line, the loss and
// accuracy plot, Paddle-form log lines and a progress bar.
//
// Every file is written atomically (internal/fsx.WriteFile): a reader sees the old
// file or the new one, never half of one. Accuracies are fractions in 0..1
// everywhere except the human-readable log lines, which print percentages.
//
// Imported by host/ (the driver); it depends on the standard library,
// gonum.org/v1/plot and golang.org/x/term only.
package results
