// Package driver is zoo's generic train/test/infer loop. It owns epochs,
// logging, metrics files, checkpoints and result files; a plugin owns its
// model and its data and answers one pass at a time (sdk.Session.Run).
// Every model gets the same loop, the same files and the same Ctrl-C
// behaviour for free.
package driver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/internal/fsx"
	"github.com/zoo-ml/zoo/sdk"
)

// Session is the part of *sdk.RemoteSession the driver uses.
type Session interface {
	Run(ctx context.Context, req sdk.RunRequest) iter.Seq2[sdk.Event, error]
	SaveState(ctx context.Context, dir string) (sdk.SaveResult, error)
	Load(ctx context.Context, dir, kind string) (sdk.LoadResult, error)
	Close(ctx context.Context) error
}

// Options configure one run of the driver.
type Options struct {
	Model   sdk.ModelInfo
	Plugin  string // the plugin serving Model, named in errors about what it sent
	Mode    string
	SaveDir string
	// Shard ("I-of-N", from --shard) is added to the names of test and
	// infer result files, so that the parts of a list do not collide.
	Shard string
	// Helper is a rank other than 0 under a launcher: rank 0 reports the
	// whole list, so a helper whose share of it is empty has not failed.
	Helper bool

	Epochs        int // train: number of epochs
	LogInterval   int // train: a log line every N iterations
	ValidInterval int // train: validate every N epochs; 0 never
	Resume        string
	Seed          int64 // the session's seed, recorded in checkpoints (resume.go)
	InferTopK     int
	RunID         string // train: set by the driver; tags metrics and checkpoints

	// IO: results and Paddle-form log lines go to Out, progress and notes
	// to ErrOut.
	IO       *iostreams.IOStreams
	Logger   hclog.Logger
	Progress *iostreams.Progress // nil: built from IO.ErrOut and IO.ErrTTY
}

// StateFile is written into every checkpoint beside the plugin's files: how
// far training had got, for --resume. Paddle ignores files it does not know.
const StateFile = "zoo_state.json"

// State is the content of StateFile.
type State struct {
	Model      string `json:"model"`
	Epoch      int    `json:"epoch"`       // the epoch the checkpoint ends
	Complete   bool   `json:"complete"`    // false: interrupted inside Epoch
	GlobalStep int64  `json:"global_step"` // iterations done before the epoch resume runs next
	// RunID names the training run that saved the checkpoint (a resumed run
	// keeps its id); Saved is when. test and infer without --weights use the
	// latest run's newest complete checkpoint (LatestCheckpoint).
	RunID string    `json:"run_id,omitempty"`
	Saved time.Time `json:"saved,omitzero"`
	// Step counts the steps of an interrupted Epoch that are done: resume
	// continues at that step (0: it repeats the epoch). See resume.go.
	Step int64 `json:"step,omitempty"`
	// Seed is the run's --seed: data order, augmentation and dropout
	// follow from it, so resume refuses another (nil in older checkpoints).
	Seed *int64 `json:"seed,omitempty"`
	// Partial holds the interrupted epoch's metric sums over its first
	// Step steps, so that the resumed epoch's summary is the whole epoch's.
	Partial *EpochSums `json:"partial,omitempty"`
}

// newRunID names a training run: its start time (so ids sort by start) and
// a random suffix.
func newRunID() string {
	var b [3]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// CheckpointName is Paddle's name for the checkpoint of an epoch.
func CheckpointName(model string, epoch int) string {
	return fmt.Sprintf("%s_epoch%d", model, epoch)
}

func (o *Options) progress() *iostreams.Progress {
	if o.Progress == nil {
		o.Progress = iostreams.NewProgress(o.IO.ErrOut, o.IO.ErrTTY)
	}
	return o.Progress
}

// logLine writes a Paddle-form log line to Out; when Out and the progress
// bar share a terminal, through the bar so that the two do not collide.
func (o *Options) logLine(line string) {
	if o.IO.OutTTY && o.IO.ErrTTY {
		o.progress().Println(line)
		return
	}
	fmt.Fprintln(o.IO.Out, line)
}

func (o *Options) logger() hclog.Logger {
	if o.Logger == nil {
		return hclog.NewNullLogger()
	}
	return o.Logger
}

// Run runs the mode's loop on an opened session.
func Run(ctx context.Context, s Session, o Options) error {
	if err := os.MkdirAll(o.SaveDir, 0o755); err != nil {
		return fmt.Errorf("save dir %s cannot be created: %w", o.SaveDir, err)
	}
	if err := checkWritable(o.SaveDir); err != nil {
		return err
	}
	switch o.Mode {
	case sdk.ModeTrain:
		return train(ctx, s, o)
	case sdk.ModeTest:
		return test(ctx, s, o)
	case sdk.ModeInfer:
		return infer(ctx, s, o)
	}
	return fmt.Errorf("unknown mode %q", o.Mode)
}

func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".zoo-write-check-*")
	if err != nil {
		return fmt.Errorf("save dir %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// pass is what one Run of a phase came to.
type pass struct {
	steps    int64
	samples  int64
	loss     float64 // sample-weighted means
	top1     float64
	top5     float64
	warnings int
	seconds  float64
	// extra sums an infer pass's step metrics (seconds, counts): an infer
	// Step carries no loss, only where the pass's time went.
	extra map[string]float64
}

// NaNError reports a loss that stopped being a number.
type NaNError struct {
	Epoch     int
	Iter      int64
	LastGood  string
	LossValue float64
}

func (e *NaNError) Error() string {
	keep := "no checkpoint was saved yet"
	if e.LastGood != "" {
		keep = "the last good checkpoint is " + e.LastGood
	}
	return fmt.Sprintf("training stopped: loss is %v at epoch %d, iter %d; %s (try a lower --learning_rate)",
		e.LossValue, e.Epoch, e.Iter, keep)
}

// runPass runs one phase and folds its events; onStep sees every step.
func runPass(ctx context.Context, s Session, o *Options, req sdk.RunRequest, onStep func(*sdk.Step) error, onPred func(*sdk.Prediction) error) (pass, error) {
	var p pass
	var sums EpochSums // the steps' sample-weighted metrics
	prog := o.progress()
	epoch := req.Epoch
	if req.Phase == sdk.PhaseTest || req.Phase == sdk.PhaseInfer {
		epoch = -1
	}
	start := time.Now()
	prog.Start(req.Phase, epoch, 0)
	defer prog.Done()
	for e, err := range s.Run(ctx, req) {
		if err != nil {
			return p, err
		}
		switch {
		case e.Start != nil:
			// Infer counts predictions, the other phases steps.
			total := e.Start.Steps
			if req.Phase == sdk.PhaseInfer {
				total = e.Start.Samples
			}
			total = max(total, 0)
			prog.Start(req.Phase, epoch, int(total))
		case e.Step != nil && req.Phase == sdk.PhaseInfer:
			for k, v := range e.Step.Metrics {
				if p.extra == nil {
					p.extra = map[string]float64{}
				}
				p.extra[k] += v
			}
		case e.Step != nil:
			st := e.Step
			if req.Phase != sdk.PhaseTrain {
				// Training reports a NaN loss itself, with the last good
				// checkpoint; evaluation has no checkpoint to offer.
				if err := checkFinite(req.Phase, st); err != nil {
					return p, err
				}
			}
			sums.add(st)
			prog.Update(int(sums.Steps))
			if onStep != nil {
				if err := onStep(st); err != nil {
					return p, err
				}
			}
		case e.Prediction != nil:
			p.samples++ // predictions; the steps' samples are added at the end
			prog.Update(int(p.samples + sums.Samples))
			if onPred != nil {
				if err := onPred(e.Prediction); err != nil {
					return p, err
				}
			}
		case e.Warning != nil:
			p.warnings++
			prog.Println(fmt.Sprintf("warning: %s: %s", e.Warning.Path, e.Warning.Message))
			o.logger().Warn("skipped", "path", e.Warning.Path, "reason", e.Warning.Message)
		}
	}
	p.steps, p.samples = sums.Steps, p.samples+sums.Samples
	p.loss, p.top1, p.top5 = sums.means()
	p.seconds = time.Since(start).Seconds()
	return p, nil
}

// checkFinite refuses an evaluation step whose metrics are not numbers: a
// mean over the pass would be NaN and its result file meaningless.
func checkFinite(phase string, st *sdk.Step) error {
	for _, k := range []string{"loss", "top1", "top5"} {
		if v, ok := st.Metrics[k]; ok && !finite(v) {
			return fmt.Errorf("%s stopped: the plugin reported %s = %v at iter %d; the weights may hold NaN or the model diverged", phase, k, v, st.Iter)
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func readState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("--resume %s: not a zoo checkpoint (no %s); to start from these weights use --pretrain or --weights", dir, StateFile)
	}
	if err != nil {
		return st, fmt.Errorf("--resume %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("--resume %s: %s is not valid JSON: %v", dir, StateFile, err)
	}
	return st, nil
}

// saveCheckpoint has the plugin write into a temp directory beside the
// target, adds the state file, and renames it into place, so a checkpoint
// directory is either whole or absent, and a failed save leaves an older
// checkpoint of the same name as it was, with no temp files beside it.
func saveCheckpoint(ctx context.Context, s Session, saveDir, name string, st State) (string, error) {
	final := filepath.Join(saveDir, name)
	tmp, err := os.MkdirTemp(saveDir, "."+name+".tmp-")
	if err != nil {
		return "", fmt.Errorf("save checkpoint %s: %w", final, err)
	}
	defer os.RemoveAll(tmp)
	res, err := s.SaveState(ctx, tmp)
	if err != nil {
		return "", fmt.Errorf("save checkpoint %s: %w", final, err)
	}
	st = st.at(res)
	st.Saved = time.Now().UTC()
	if err := results.WriteJSON(filepath.Join(tmp, StateFile), st); err != nil {
		return "", fmt.Errorf("save checkpoint %s: %w", final, err)
	}
	if err := fsx.SyncDir(tmp); err != nil {
		return "", fmt.Errorf("save checkpoint %s: %w", final, err)
	}
	// Replace an older checkpoint of the same name: move it aside first so
	// that a crash between the renames leaves one whole copy (the next run
	// on the directory puts it back: cleanLeftovers).
	old := ""
	if _, err := os.Stat(final); err == nil {
		old = filepath.Join(saveDir, "."+name+".old")
		os.RemoveAll(old)
		if err := rename(final, old); err != nil {
			return "", fmt.Errorf("save checkpoint %s: %w", final, err)
		}
	}
	if err := rename(tmp, final); err != nil {
		if old != "" {
			if rerr := rename(old, final); rerr != nil {
				return "", fmt.Errorf("save checkpoint %s: %w (the previous checkpoint is in %s)", final, err, old)
			}
		}
		return "", fmt.Errorf("save checkpoint %s: %w", final, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return final, fsx.SyncDir(saveDir)
}

// rename is os.Rename; tests replace it to make a rename fail.
var rename = os.Rename

// otherRuns lists the checkpoints of model in saveDir that runs other than
// run saved.
func otherRuns(saveDir, model, run string) []string {
	var names []string
	entries, _ := os.ReadDir(saveDir)
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if st, err := readState(filepath.Join(saveDir, e.Name())); err == nil && st.Model == model && st.RunID != run {
			names = append(names, e.Name())
		}
	}
	return names
}

// LatestCheckpoint returns the checkpoint test and infer use when no
// --weights is given: the newest complete checkpoint of the latest training
// run of model in saveDir. The latest run is the one that saved a
// checkpoint last (complete or not), so an older run's higher epochs never
// win, and an interrupted checkpoint is never used. It returns "" when
// saveDir holds no checkpoint of model, and an error when the latest run
// has no complete one. Hidden entries (a save in progress, .NAME.tmp-*,
// and checkpoints moved aside, .NAME.old) are never considered.
func LatestCheckpoint(saveDir, model string) (string, error) {
	type ckpt struct {
		dir string
		st  State
	}
	var all []ckpt
	latest := -1
	entries, _ := os.ReadDir(saveDir)
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(saveDir, e.Name())
		st, err := readState(dir)
		if err != nil || st.Model != model {
			continue
		}
		all = append(all, ckpt{dir, st})
		if latest < 0 || st.Saved.After(all[latest].st.Saved) {
			latest = len(all) - 1
		}
	}
	if latest < 0 {
		return "", nil
	}
	run := all[latest].st.RunID
	best, newest := -1, -1
	for i, c := range all {
		if c.st.RunID != run {
			continue
		}
		if newest < 0 || c.st.Epoch > all[newest].st.Epoch {
			newest = i
		}
		if c.st.Complete && (best < 0 || c.st.Epoch > all[best].st.Epoch) {
			best = i
		}
	}
	if best < 0 {
		c := all[newest]
		return "", fmt.Errorf("the latest %s run in %s has no complete checkpoint: %s was interrupted in epoch %d; continue it with `zoo run %s train --save_dir %s --resume %s`, or pass --weights DIR",
			model, filepath.Clean(saveDir), filepath.Base(c.dir), c.st.Epoch, model, filepath.Clean(saveDir), c.dir)
	}
	return all[best].dir, nil
}
