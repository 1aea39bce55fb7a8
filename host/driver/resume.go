package driver

import (
	"context"
	"fmt"

	"github.com/zoo-ml/zoo/sdk"
)

// Exact resume. A run interrupted anywhere and resumed ends with the same
// bytes as a run that never stopped, because nothing a step depends on is
// a stream carried across steps: the plugin draws data order, augmentation
// and dropout from (seed, epoch, step or sample), the learning rate from
// the global step, and the weights, velocities and batch-norm statistics
// are in the checkpoint. What the host must carry is where training stood:
// the epoch, the step within it (State.Step, which the plugin reports in
// Save's answer because the host may not have read the last steps' events
// when Ctrl-C ended the stream), the seed, and the epoch's metric sums.

// EpochSums accumulates an epoch's sample-weighted train metrics in step
// order; runPass folds a whole pass's steps with it too.
type EpochSums struct {
	Steps   int64   `json:"steps"`
	Samples int64   `json:"samples"`
	Weight  float64 `json:"weight"`
	Loss    float64 `json:"loss"`
	Top1    float64 `json:"top1"`
	Top5    float64 `json:"top5"`

	// missed are the steps State.at took from Save's answer because the
	// host had not read their events: interrupted logs them.
	missed []sdk.Step
}

func (e *EpochSums) add(st *sdk.Step) {
	n := float64(st.Samples)
	if n <= 0 {
		n = 1
	}
	e.Steps++
	e.Samples += int64(n)
	e.Weight += n
	e.Loss += n * st.Metrics["loss"]
	e.Top1 += n * st.Metrics["top1"]
	e.Top5 += n * st.Metrics["top5"]
}

// means returns the sample-weighted means (zeros for an empty epoch).
func (e *EpochSums) means() (loss, top1, top5 float64) {
	if e.Weight <= 0 {
		return 0, 0, 0
	}
	return e.Loss / e.Weight, e.Top1 / e.Weight, e.Top5 / e.Weight
}

// at completes an interrupted epoch's state with the position the plugin
// reported on Save. Without a position for this epoch (a plugin that is no
// sdk.StepResumer, or whose pass had not started when Ctrl-C came) the
// state keeps the step the epoch started at: 0 repeats the epoch, and only
// a resumed epoch of a StepResumer starts later.
func (st State) at(r sdk.SaveResult) State {
	if st.Complete {
		return st
	}
	if r.Position != nil && r.Position.Epoch == st.Epoch {
		st.Step = r.Position.Steps
	}
	if st.Step <= 0 {
		st.Step, st.Partial = 0, nil
		return st
	}
	if p := st.Partial; p != nil && p.Steps < st.Step {
		// The host had not read the last steps' events when the stream
		// ended; Save's answer repeats the pass's recent ones.
		missing := int(st.Step - p.Steps)
		if missing <= len(r.RecentSteps) {
			for _, step := range r.RecentSteps[len(r.RecentSteps)-missing:] {
				p.add(&step)
				p.missed = append(p.missed, step)
			}
		} else {
			p.Steps = st.Step // their updates are in the weights, their metrics lost
		}
	}
	return st
}

// resumePoint is where a resumed run starts.
type resumePoint struct {
	epoch  int
	step   int64 // steps of epoch already done
	global int64 // iterations done before step
	sums   EpochSums
	// finished: the checkpoint ends the run's last epoch; nothing to train.
	finished bool
}

// resume checks the checkpoint o.Resume, loads it into the session and
// returns where training continues.
func resume(ctx context.Context, s Session, o *Options) (resumePoint, error) {
	var rp resumePoint
	st, err := readState(o.Resume)
	if err != nil {
		return rp, err
	}
	name := o.Model.Name
	if st.Model != name {
		return rp, fmt.Errorf("--resume %s: a checkpoint of %s, not %s", o.Resume, st.Model, name)
	}
	if st.Seed != nil && *st.Seed != o.Seed {
		return rp, fmt.Errorf("--resume %s: the checkpoint was trained with --seed %d, this run has --seed %d; resume with --seed %d to continue the same data order and dropout", o.Resume, *st.Seed, o.Seed, *st.Seed)
	}
	if st.Step < 0 || st.GlobalStep < 0 || st.Epoch < 0 {
		return rp, fmt.Errorf("--resume %s: %s holds a negative epoch or step; the checkpoint is damaged, resume from an earlier one", o.Resume, StateFile)
	}
	if st.Complete && st.Epoch+1 >= o.Epochs {
		fmt.Fprintf(o.IO.Out, "%s run finished: %s ends epoch %d of %d (epochs count from 0); nothing to train (to train on, pass --epoch N with N > %d)\n",
			name, o.Resume, st.Epoch, o.Epochs, st.Epoch+1)
		rp.finished = true
		return rp, nil
	}
	if st.RunID != "" {
		o.RunID = st.RunID
	}
	res, err := s.Load(ctx, o.Resume, sdk.LoadResume)
	if err != nil {
		return rp, fmt.Errorf("--resume %s: %w", o.Resume, err)
	}
	o.logger().Info("resumed", "dir", o.Resume, "loaded", res.Loaded, "ignored", res.Ignored)
	rp.epoch, rp.global = st.Epoch, st.GlobalStep
	switch {
	case st.Complete:
		rp.epoch++
	case st.Step > 0:
		rp.step = st.Step
		rp.global += st.Step
		if st.Partial != nil {
			rp.sums = *st.Partial
		}
	}
	if rp.step > 0 {
		fmt.Fprintf(o.IO.Out, "resuming %s at epoch %d, step %d (global step %d) from %s\n", name, rp.epoch, rp.step, rp.global, o.Resume)
	} else {
		fmt.Fprintf(o.IO.Out, "resuming %s at epoch %d (global step %d) from %s\n", name, rp.epoch, rp.global, o.Resume)
	}
	return rp, nil
}
