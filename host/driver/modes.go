package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/sdk"
)

func train(ctx context.Context, s Session, o Options) error {
	name := o.Model.Name
	var rp resumePoint
	o.RunID = newRunID()
	if o.Resume != "" {
		var err error
		if rp, err = resume(ctx, s, &o); err != nil {
			return err
		}
		if rp.finished {
			return nil
		}
	}
	global := rp.global
	mlog, notes, err := results.OpenRunLog(o.SaveDir, o.RunID)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(o.IO.ErrOut, n)
	}
	if others := otherRuns(o.SaveDir, name, o.RunID); len(others) > 0 {
		fmt.Fprintf(o.IO.ErrOut, "note: %s holds checkpoints of earlier runs (%s); this run replaces those of its epochs, and test and infer use this run's\n",
			o.SaveDir, strings.Join(others, ", "))
	}
	defer mlog.Close()
	logInterval := max(o.LogInterval, 1)
	lastGood := ""
	if o.Resume != "" {
		lastGood = o.Resume
	}

	for epoch := rp.epoch; epoch < o.Epochs; epoch++ {
		// Only the first epoch of a resumed run starts inside itself.
		startStep, sums := int64(0), EpochSums{}
		if epoch == rp.epoch {
			startStep, sums = rp.step, rp.sums
		}
		epochStart := global - startStep
		var nanErr *NaNError
		logStep := func(st *sdk.Step) error {
			if st.Iter%int64(logInterval) == 0 {
				ev := results.Event{Phase: "train", Epoch: epoch, Iter: int(st.Iter), Loss: st.Metrics["loss"],
					Top1: st.Metrics["top1"], Top5: st.Metrics["top5"], LR: st.Metrics["lr"], Extra: extraMetrics(st)}
				o.logLine(results.FormatLine(ev))
				return mlog.Write(ev)
			}
			return nil
		}
		onStep := func(st *sdk.Step) error {
			if loss := st.Metrics["loss"]; !finite(loss) {
				nanErr = &NaNError{Epoch: epoch, Iter: st.Iter, LastGood: lastGood, LossValue: loss}
				mlog.Write(results.Event{Phase: "train", Epoch: epoch, Iter: int(st.Iter), Loss: loss,
					Top1: st.Metrics["top1"], Top5: st.Metrics["top5"], LR: st.Metrics["lr"]})
				return nanErr
			}
			global++
			sums.add(st)
			return logStep(st)
		}
		req := sdk.RunRequest{Phase: sdk.PhaseTrain, Epoch: epoch, GlobalStep: global, StartStep: startStep}
		p, err := runPass(ctx, s, &o, req, onStep, nil)
		if nanErr != nil {
			return nanErr
		}
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(s, &o, epoch, epochStart, startStep, &sums, logStep, err)
			}
			return err
		}
		rate := 0.0
		if p.seconds > 0 {
			rate = float64(p.samples) / p.seconds
		}
		// The epoch's means come from sums, which a resumed epoch carries
		// over from the checkpoint: they cover every step of the epoch.
		loss, top1, top5 := sums.means()
		epochEv := results.Event{Phase: "train", Epoch: epoch, Iter: int(sums.Steps), Loss: loss, Top1: top1, Top5: top5, ClipsPerS: rate}
		fmt.Fprintf(o.IO.Out, "[TRAIN] Epoch %d training finished, average time: %.3fs per iter, %.2f clips/s\n", epoch, p.seconds/float64(max(p.steps, 1)), rate)
		if err := mlog.Write(epochEv); err != nil {
			return err
		}
		dir, err := saveCheckpoint(context.WithoutCancel(ctx), s, o.SaveDir, CheckpointName(name, epoch),
			State{Model: name, Epoch: epoch, Complete: true, GlobalStep: global, RunID: o.RunID, Seed: &o.Seed})
		if err != nil {
			return err
		}
		lastGood = dir
		fmt.Fprintf(o.IO.Out, "saved checkpoint %s\n", dir)
		if ctx.Err() != nil {
			return errInterrupted
		}
		if o.ValidInterval > 0 && (epoch+1)%o.ValidInterval == 0 {
			v, err := runPass(ctx, s, &o, sdk.RunRequest{Phase: sdk.PhaseValid, Epoch: epoch, GlobalStep: global}, nil, nil)
			if err != nil {
				if ctx.Err() != nil {
					return errInterrupted
				}
				return err
			}
			ev := results.Event{Phase: "valid", Epoch: epoch, Iter: int(v.steps), Loss: v.loss, Top1: v.top1, Top5: v.top5}
			fmt.Fprintln(o.IO.Out, results.FormatLine(ev))
			if err := mlog.Write(ev); err != nil {
				return err
			}
		}
	}
	if err := plot(o); err != nil {
		return err
	}
	return nil
}

// extraMetrics are a step's metrics beyond loss, top1, top5 and lr, which
// the plugin chose to send (e.g. allreduce_s): the train log line and
// metrics.jsonl show them as they come, whatever the model.
func extraMetrics(st *sdk.Step) map[string]float64 {
	var extra map[string]float64
	for k, v := range st.Metrics {
		switch k {
		case "loss", "top1", "top5", "lr":
			continue
		}
		if extra == nil {
			extra = map[string]float64{}
		}
		extra[k] = v
	}
	return extra
}

// errInterrupted is cmdutil.ErrInterrupted's twin; the CLI maps both to 130.
var errInterrupted = fmt.Errorf("interrupted: %w", context.Canceled)

// interrupted saves what training has after a Ctrl-C; the plugin stopped
// between steps, so its state is consistent. The state records the global
// step at the start of the epoch and, from the plugin's answer to Save,
// the steps of the epoch done (State.at): --resume continues at that step,
// or repeats the epoch when the plugin cannot start inside one.
func interrupted(s Session, o *Options, epoch int, global, startStep int64, sums *EpochSums, logStep func(*sdk.Step) error, cause error) error {
	if !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	partial := *sums
	dir, err := saveCheckpoint(context.Background(), s, o.SaveDir, CheckpointName(o.Model.Name, epoch),
		State{Model: o.Model.Name, Epoch: epoch, Complete: false, GlobalStep: global, Step: startStep, Seed: &o.Seed, Partial: &partial, RunID: o.RunID})
	if err != nil {
		return fmt.Errorf("interrupted, and the checkpoint could not be saved: %w", err)
	}
	// The steps done whose events the interrupt cut off: logged late, so
	// that the log and metrics.jsonl hold every step once.
	for _, st := range partial.missed {
		logStep(&st)
	}
	fmt.Fprintf(o.IO.Out, "interrupted: saved checkpoint %s (resume with --resume %s)\n", dir, dir)
	plot(*o)
	return errInterrupted
}

func plot(o Options) error {
	events, err := results.ReadMetrics(filepath.Join(o.SaveDir, results.MetricsFile))
	if err != nil {
		return err
	}
	path := filepath.Join(o.SaveDir, results.PlotFile)
	if err := results.Plot(path, results.RunEvents(events, o.RunID)); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	fmt.Fprintf(o.IO.Out, "wrote %s\n", path)
	return nil
}

func test(ctx context.Context, s Session, o Options) error {
	onStep := func(st *sdk.Step) error {
		if st.Iter%int64(max(o.LogInterval, 1)) == 0 {
			o.logLine(results.FormatLine(results.Event{Phase: "test", Epoch: -1, Iter: int(st.Iter),
				Loss: st.Metrics["loss"], Top1: st.Metrics["top1"], Top5: st.Metrics["top5"]}))
		}
		return nil
	}
	p, err := runPass(ctx, s, &o, sdk.RunRequest{Phase: sdk.PhaseTest, Epoch: -1}, onStep, nil)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	if p.samples == 0 && o.Helper && p.warnings == 0 {
		return nil // an empty share: rank 0 reports the list
	}
	if p.samples == 0 && o.Shard != "" && p.warnings == 0 {
		// A shard with no video (more shards than videos: an Indexed
		// Job with more pods than the list) is done: an empty result.
		path := filepath.Join(o.SaveDir, o.Model.Name+"_test_result"+shardSuffix(o.Shard)+".json")
		if err := results.WriteJSON(path, results.TestResult{}); err != nil {
			return err
		}
		fmt.Fprintf(o.IO.Out, "shard %s holds no video of the list: wrote %s (0 videos)\n", o.Shard, path)
		return nil
	}
	if p.samples == 0 {
		return nothingDone(sdk.ModeTest, p.warnings)
	}
	res := results.TestResult{Videos: int(p.samples), Loss: p.loss, Top1: p.top1, Top5: p.top5}
	fmt.Fprintf(o.IO.Out, "[TEST] Finish, videos: %d  Loss: %.6f, top1_acc: %.2f, top5_acc: %.2f\n", res.Videos, res.Loss, 100*res.Top1, 100*res.Top5)
	if p.warnings > 0 {
		fmt.Fprintf(o.IO.Out, "%d video(s) could not be read and were not evaluated\n", p.warnings)
	}
	path := filepath.Join(o.SaveDir, o.Model.Name+"_test_result"+shardSuffix(o.Shard)+".json")
	if err := results.WriteJSON(path, res); err != nil {
		return err
	}
	fmt.Fprintf(o.IO.Out, "wrote %s\n", path)
	return nil
}

func infer(ctx context.Context, s Session, o Options) error {
	k := o.InferTopK
	if k <= 0 {
		k = 20
	}
	labels := o.Model.Labels
	var rows []results.InferRow
	var recs []results.InferRecord
	onPred := func(p *sdk.Prediction) error {
		if err := p.Scores.Validate(); err != nil {
			return fmt.Errorf("plugin returned a malformed prediction for %s: %w", p.ID, err)
		}
		if len(labels) > 0 && len(p.Scores.Data) != len(labels) {
			return fmt.Errorf("plugin returned %d scores for %s, but the model has %d labels", len(p.Scores.Data), p.ID, len(labels))
		}
		for _, v := range p.Scores.Data {
			if !finite(float64(v)) {
				return fmt.Errorf("plugin returned a non-finite score for %s", p.ID)
			}
		}
		if err := probabilities(p.Scores); err != nil {
			return fmt.Errorf("plugin %s returned scores for %s that are not probabilities (%v): a plugin sends each row through softmax", o.Plugin, p.ID, err)
		}
		idx, vals := results.TopK(p.Scores.Data, k)
		rows = append(rows, results.InferRow{VideoID: p.ID, Scores: vals, Labels: idx})
		names := make([]string, len(idx))
		for i, c := range idx {
			if c < len(labels) {
				names[i] = labels[c]
			}
		}
		recs = append(recs, results.InferRecord{VideoID: p.ID, Scores: vals, Labels: idx, Names: names})
		// The name first (the line reads as before), then the index a
		// label file or list uses, when the name is not the index itself.
		line := fmt.Sprintf("%s: %d (%.4f)", p.ID, idx[0], vals[0])
		if top := names[0]; top != "" && top != fmt.Sprint(idx[0]) {
			line = fmt.Sprintf("%s: %s (%.4f) class %d", p.ID, top, vals[0], idx[0])
		}
		o.logLine(line)
		return nil
	}
	p, err := runPass(ctx, s, &o, sdk.RunRequest{Phase: sdk.PhaseInfer, Epoch: -1}, nil, onPred)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	if len(rows) == 0 && o.Helper && p.warnings == 0 {
		return nil // an empty share: rank 0 reports the list
	}
	empty := len(rows) == 0 && o.Shard != "" && p.warnings == 0 // a shard with no video: empty files
	if len(rows) == 0 && !empty {
		return nothingDone(sdk.ModeInfer, p.warnings)
	}
	base := filepath.Join(o.SaveDir, o.Model.Name+"_infer_result"+shardSuffix(o.Shard))
	if recs == nil {
		recs = []results.InferRecord{} // [] in the JSON, not null
	}
	if err := results.WritePickle(base, rows); err != nil {
		return err
	}
	if err := results.WriteJSON(base+".json", recs); err != nil {
		return err
	}
	sum := results.InferSummary{Videos: len(rows), Skipped: p.warnings, Seconds: p.seconds, Extra: p.extra}
	if p.seconds > 0 {
		sum.ClipsPerS = float64(len(rows)) / p.seconds
	}
	sumPath := filepath.Join(o.SaveDir, o.Model.Name+"_infer_summary"+shardSuffix(o.Shard)+".json")
	if err := results.WriteJSON(sumPath, sum); err != nil {
		return err
	}
	if p.warnings > 0 {
		fmt.Fprintf(o.IO.Out, "%d video(s) could not be read and were skipped\n", p.warnings)
	}
	if empty {
		fmt.Fprintf(o.IO.Out, "shard %s holds no video of the list: wrote %s, %s.json and %s (0 videos)\n", o.Shard, base, base, sumPath)
		return nil
	}
	fmt.Fprintln(o.IO.Out, inferLine(sum))
	fmt.Fprintf(o.IO.Out, "wrote %s, %s.json and %s (%d videos, top %d)\n", base, base, sumPath, len(rows), k)
	return nil
}

// inferLine is an infer pass's last log line, in the form of the test
// pass's: "[INFER] Finish, videos: 5  seconds: 3.210, clips_per_s: 1.558",
// then the plugin's metrics in name order (TSM's ", decode_s: 1.234,
// decode_wait_s: 0.456, forward_s: 2.345").
func inferLine(s results.InferSummary) string {
	line := fmt.Sprintf("[INFER] Finish, videos: %d  seconds: %.3f, clips_per_s: %.3f", s.Videos, s.Seconds, s.ClipsPerS)
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		line += fmt.Sprintf(", %s: %.3f", k, s.Extra[k])
	}
	return line
}

// nothingDone is the error of a test or infer pass that produced no result:
// every input failed, or there was none. It writes no result file.
func nothingDone(mode string, skipped int) error {
	if skipped > 0 {
		return fmt.Errorf("%s failed: none of the %d input(s) could be read (the warnings above say why); no result was written", mode, skipped)
	}
	return fmt.Errorf("%s failed: the plugin found no inputs; check the list (--filelist) or path given; no result was written", mode)
}

// probabilities checks that every row (the last dimension) of scores is a
// probability distribution: each score in [0, 1], each row summing to 1
// within 1e-3 (float32 softmax over a thousand classes is off by 1e-5).
func probabilities(scores sdk.Tensor) error {
	n := len(scores.Data)
	if len(scores.Shape) > 0 && scores.Shape[len(scores.Shape)-1] > 0 {
		n = int(scores.Shape[len(scores.Shape)-1])
	}
	for start := 0; start+n <= len(scores.Data) && n > 0; start += n {
		sum := 0.0
		for _, v := range scores.Data[start : start+n] {
			if v < 0 || v > 1 {
				return fmt.Errorf("score %g is outside [0, 1]", v)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-3 {
			return fmt.Errorf("a row sums to %g, not 1", sum)
		}
	}
	return nil
}

// shardSuffix is "_I-of-N" for a shard's result files, "" otherwise.
func shardSuffix(shard string) string {
	if shard == "" {
		return ""
	}
	return "_" + shard
}
