//go:build zoocuda

// Command zoo-gpucheck compares nn/cuda's GPU model with the CPU build
// (forward logits and one training step's update, for the small TSM and
// TSM-R50) and times TSM-R50 on the GPU. scripts/gpu-check.sh runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/zoo-ml/zoo/nn/cuda"
	"github.com/zoo-ml/zoo/nn/resnetgpu"
)

func main() {
	out := flag.String("json", "", "write the report as JSON to this file")
	checks := flag.String("check", "small,tsm-r50", "configurations to compare with the CPU build (empty: none)")
	batches := flag.String("bench", "8,32", "TSM-R50 batch sizes (clips) to time (empty: none)")
	iters := flag.Int("iters", 5, "timed iterations per measurement")
	flag.Parse()
	if err := run(*out, *checks, *batches, *iters); err != nil {
		fmt.Fprintln(os.Stderr, "zoo-gpucheck:", err)
		os.Exit(1)
	}
}

func run(out, checks, batches string, iters int) error {
	d, err := cuda.Open(0)
	if err != nil {
		return fmt.Errorf("open GPU 0: %w", err)
	}
	defer d.Close()
	rep := resnetgpu.Report{Device: fmt.Sprintf("%s (sm_%d%d, %d MiB)", d.Name, d.Major, d.Minor, d.MemSize>>20), Pass: true}
	fmt.Fprintln(os.Stderr, "device:", rep.Device)
	cfgs := resnetgpu.CheckConfigs()
	for _, name := range fields(checks) {
		cfg, ok := cfgs[name]
		if !ok {
			return fmt.Errorf("unknown configuration %q", name)
		}
		r, err := resnetgpu.Check(d, name, cfg, os.Stderr)
		if err != nil {
			rep.Pass = false
			r.Name, r.WorstParam = name, "error: "+err.Error()
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
		rep.Pass = rep.Pass && r.Pass
		rep.Checks = append(rep.Checks, r)
	}
	for _, b := range fields(batches) {
		n, err := strconv.Atoi(b)
		if err != nil {
			return fmt.Errorf("batch %q: %w", b, err)
		}
		r, err := resnetgpu.Bench(d, n, iters)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench batch %d: %v\n", n, err)
			rep.Pass = false
			continue
		}
		fmt.Fprintf(os.Stderr, "tsm-r50 batch %d: forward %.1f ms, train step %.1f ms (%.1f clips/s), value pool peak %.0f MiB\n", n, r.ForwardMS, r.TrainMS, r.ClipsPerS, r.PoolPeakMiB)
		rep.Bench = append(rep.Bench, r)
	}
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if !rep.Pass {
		return fmt.Errorf("GPU check failed (see the report)")
	}
	return nil
}

func fields(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
