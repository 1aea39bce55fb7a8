package classifier

import (
	"strings"

	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/video"
)

// Section is one reader section of a classifier's config ([TRAIN],
// [VALID], [TEST] or [INFER]) as CheckSections sees it.
type Section struct {
	Name                             string // upper case
	ShortSize, TargetSize, BatchSize int
	Filelist                         string
	Synthetic                        int // the built-in dataset's size for this section
}

// Data says what a plugin reads: Kind names its files ("video", "image";
// the SYNTHETIC keys are <section>_<Kind>s), Exts the extensions a
// directory lists, MinSize the smallest frame the built-in dataset can
// draw, PathKey and Path infer's one-path option (video_path, image_path).
type Data struct {
	Kind          string
	Exts          []string
	MinSize       int
	PathKey, Path string
}

// CheckSections checks, before a session allocates anything, that the
// sections a mode reads can run from the first step to the last; the
// first section is the one whose batch and crop build the graph. It
// checks each section's geometry (and that a training run's [VALID] crops
// what [TRAIN] does, since it validates with the training graph) and the
// data it names: a list that exists, whose labels are below numClasses
// and that holds a whole training batch, or a built-in dataset that is
// not empty. A [VALID] filelist left empty while [TRAIN] reads one is
// left to the validation pass: with --valid_interval 0 it never runs.
func CheckSections(secs []Section, d Data, numClasses int) error {
	graph := secs[0]
	builtin := graph.Filelist == "" && !(graph.Name == "INFER" && d.Path != "")
	for _, s := range secs {
		switch {
		case s.BatchSize < 1:
			return sdk.Errorf(sdk.CodeInvalidArgument, "%s.batch_size %d: must be at least 1", s.Name, s.BatchSize)
		case s.TargetSize < 1 || s.ShortSize < s.TargetSize:
			return sdk.Errorf(sdk.CodeInvalidArgument, "%s.target_size %d must be positive and at most short_size %d", s.Name, s.TargetSize, s.ShortSize)
		case s.TargetSize != graph.TargetSize:
			return sdk.Errorf(sdk.CodeInvalidArgument, "[%s] target_size %d differs from [%s] target_size %d: training validates with the training graph, so set both the same",
				s.Name, s.TargetSize, graph.Name, graph.TargetSize)
		}
		synthetic := "SYNTHETIC." + strings.ToLower(s.Name) + "_" + d.Kind + "s"
		switch {
		case builtin:
			if s.TargetSize < d.MinSize {
				return sdk.Errorf(sdk.CodeInvalidArgument, "[%s] target_size %d: the built-in dataset needs frames of at least %dx%d", s.Name, s.TargetSize, d.MinSize, d.MinSize)
			}
			if s.Synthetic < 1 {
				return sdk.Errorf(sdk.CodeInvalidArgument, "%s %d: must be at least 1", synthetic, s.Synthetic)
			}
			if s.Name == "TRAIN" && s.Synthetic < s.BatchSize {
				return sdk.Errorf(sdk.CodeInvalidArgument, "%s %d is less than one batch of %d: training would take no step", synthetic, s.Synthetic, s.BatchSize)
			}
		case s.Name == "INFER" && d.Path != "":
			if _, err := video.PathItems(d.Path, d.Kind, d.Exts); err != nil {
				return sdk.Errorf(sdk.CodeNotFound, "%s %v", d.PathKey, err)
			}
		case s.Filelist != "":
			items, err := video.ParseFileList(s.Filelist, s.Name != "INFER", d.Kind, d.Exts)
			if err == nil {
				err = video.CheckLabels(items, numClasses)
			}
			if err != nil {
				return sdk.Errorf(sdk.CodeInvalidArgument, "[%s] filelist: %v", s.Name, err)
			}
			if s.Name == "TRAIN" && len(items) < s.BatchSize {
				return sdk.Errorf(sdk.CodeInvalidArgument, "[TRAIN] filelist %s lists %d %ss, less than one batch of %d: training would take no step",
					s.Filelist, len(items), d.Kind, s.BatchSize)
			}
		}
	}
	return nil
}
