// Package results writes the files a zoo run leaves behind: the infer
// pickle Paddle's infer.py writes (TSM_infer_result), the JSON results
// (the infer pass's timings in TSM_infer_summary.json among them),
// metrics.jsonl with one Event per log line, the loss and accuracy plot and
// Paddle-form log lines (the progress bar is host/iostreams').
//
// Every file is written atomically (internal/fsx.WriteFile): a reader sees
// the old file or the new one, never half of one. Accuracies are fractions
// in 0..1 everywhere except the human-readable log lines, which print
// percentages.
//
// Imported by host/ (the driver); it depends on the standard library,
// gonum.org/v1/plot and the stdlib-only internal/pickle and internal/fsx.
package results
