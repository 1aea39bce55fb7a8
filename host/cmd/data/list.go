package data

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/dataset"
	"github.com/zoo-ml/zoo/host/cmdutil"
)

// ListOptions are `zoo data list`'s inputs.
type ListOptions struct {
	F         *cmdutil.Factory
	Dir       string
	Out       string
	Labels    string
	LabelFile string
	Split     string
	Seed      uint64
}

// NewCmdList returns the command; runF replaces listRun in tests.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	o := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list DIR --out LIST",
		Short: "List a class-per-folder tree of videos (DIR/<class>/<video>)",
		Long: `list writes a "path label" line for every video under DIR/<class>/, sorted by
class and path, paths relative to LIST, and a label file (one class name per
line; class i is line i+1) beside it, labels.txt unless --label-file says.

Classes are the folder names in sorted order, unless --labels FILE gives the
order (one name per line, or a JSON list, e.g. Kinetics' 400 names): then
every folder must match a name (case, spaces and underscores aside).

--split val=0.1 also writes LIST_train and LIST_val (stem_train.list,
stem_val.list), taking a tenth of each class for val, chosen by --seed.`,
		Example: `  zoo data list videos/ --out lists/all.list
  zoo data list kinetics/train --out lists/k400.list --labels kinetics400.txt --split val=0.1 --seed 7`,
		Args: cmdutil.ExactArgs(1, "data list needs one directory, e.g. `zoo data list videos/ --out train.list`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir = args[0]
			if o.Out == "" {
				return cmdutil.FlagErrorf("data list: --out LIST is required")
			}
			if o.Split != "" {
				if _, _, err := parseSplit(o.Split); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(o)
			}
			return listRun(o)
		},
	}
	cmd.Flags().StringVar(&o.Out, "out", "", "the list to write")
	cmd.Flags().StringVar(&o.Labels, "labels", "", "class names in index order (a text file, one per line, or a JSON list)")
	cmd.Flags().StringVar(&o.LabelFile, "label-file", "", "where to write the class names (default: labels.txt beside --out)")
	cmd.Flags().StringVar(&o.Split, "split", "", "also write a stratified split: NAME=FRACTION, e.g. val=0.1")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 1, "seed of --split's choice")
	return cmd
}

func listRun(o *ListOptions) error {
	var to dataset.TreeOptions
	if o.Labels != "" {
		names, err := dataset.ReadLabels(o.Labels)
		if err != nil {
			return err
		}
		to = dataset.TreeOptions{Labels: names, LabelsFrom: o.Labels}
	}
	l, skipped, err := dataset.Tree(o.Dir, to)
	if err != nil {
		return err
	}
	if skipped > 0 {
		fmt.Fprintf(o.F.IO.ErrOut, "note: %d files under %s are not videos in a class folder (%s); not listed\n", skipped, o.Dir, strings.Join(dataset.VideoExts, " "))
	}
	lf := o.LabelFile
	if lf == "" {
		lf = labelsFile(o.Out)
	}
	return writeLists(o.F, o.Out, lf, l, o.Split, o.Seed)
}
