package data

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/dataset"
	"github.com/zoo-ml/zoo/host/cmdutil"
)

// KineticsOptions are `zoo data kinetics`'s inputs.
type KineticsOptions struct {
	F         *cmdutil.Factory
	CSV       string
	Videos    string
	Out       string
	Model     string
	Labels    string
	LabelFile string
	Report    string
	Split     string
	Seed      uint64
}

// NewCmdKinetics returns the command; runF replaces kineticsRun in tests.
func NewCmdKinetics(f *cmdutil.Factory, runF func(*KineticsOptions) error) *cobra.Command {
	o := &KineticsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "kinetics CSV --videos DIR --out LIST",
		Short: "List the clips of a Kinetics-400/600/700 annotation CSV found in a folder",
		Long: `kinetics reads one of Kinetics' annotation CSVs (header
label,youtube_id,time_start,time_end,split) and finds each row's clip under
--videos, at any depth, named as the common downloaders name it:
{youtube_id}_{start:06d}_{end:06d}.mp4, or {youtube_id}.mp4 (any video
extension). Labels become indices in the model's label list (--model, default
TSM, whose list is Kinetics-400's as Paddle orders it), or in --labels FILE.

Rows without a file are not dropped silently: they are counted on stderr
and listed, with the file name looked for, in a JSON report (--report,
default LIST's stem + _report.json).`,
		Example: `  zoo data kinetics kinetics400/train.csv --videos k400/train --out lists/train.list
  zoo data kinetics k600/val.csv --videos k600/val --out lists/val.list --labels k600_labels.txt`,
		Args: cmdutil.ExactArgs(1, "data kinetics needs one CSV, e.g. `zoo data kinetics train.csv --videos DIR --out train.list`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.CSV = args[0]
			if o.Out == "" || o.Videos == "" {
				return cmdutil.FlagErrorf("data kinetics: --videos DIR and --out LIST are required")
			}
			if o.Split != "" {
				if _, _, err := parseSplit(o.Split); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(o)
			}
			return kineticsRun(cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Videos, "videos", "", "the folder the clips were downloaded to")
	fl.StringVar(&o.Out, "out", "", "the list to write")
	fl.StringVar(&o.Model, "model", "TSM", "map labels to indices with this model's label list (zoo info MODEL)")
	fl.StringVar(&o.Labels, "labels", "", "map labels with this file instead (one name per line, or a JSON list)")
	fl.StringVar(&o.LabelFile, "label-file", "", "where to write the class names (default: labels.txt beside --out)")
	fl.StringVar(&o.Report, "report", "", "where to write the JSON report of rows without a file (default: LIST's stem + _report.json)")
	fl.StringVar(&o.Split, "split", "", "also write a stratified split: NAME=FRACTION, e.g. val=0.1")
	fl.Uint64Var(&o.Seed, "seed", 1, "seed of --split's choice")
	return cmd
}

func kineticsRun(cmd *cobra.Command, o *KineticsOptions) error {
	var labels []string
	from := o.Labels
	if o.Labels != "" {
		var err error
		if labels, err = dataset.ReadLabels(o.Labels); err != nil {
			return err
		}
	} else {
		m, err := o.F.FindModel(cmd.Context(), o.Model)
		if err != nil {
			return err
		}
		if len(m.Info.Labels) == 0 {
			return cmdutil.FlagErrorf("--model %s has no label list: pass --labels FILE", m.Info.Name)
		}
		labels, from = m.Info.Labels, fmt.Sprintf("model %s's label list (zoo info %s)", m.Info.Name, m.Info.Name)
	}
	res, err := dataset.Kinetics(o.CSV, o.Videos, labels, from)
	if err != nil {
		return err
	}
	report := o.Report
	if report == "" {
		report = strings.TrimSuffix(o.Out, filepath.Ext(o.Out)) + "_report.json"
	}
	b, err := json.MarshalIndent(struct {
		CSV     string            `json:"csv"`
		Videos  string            `json:"videos"`
		Rows    int               `json:"rows"`
		Found   int               `json:"found"`
		Missing []dataset.Missing `json:"missing"`
	}{o.CSV, o.Videos, res.Rows, len(res.Entries), append([]dataset.Missing{}, res.Missing...)}, "", "  ")
	if err != nil {
		return err
	}
	if err := dataset.WriteFile(report, append(b, '\n')); err != nil {
		return err
	}
	if len(res.Entries) == 0 {
		return fmt.Errorf("%s: none of its %d clips is under %s (looked for names like %s); see %s", o.CSV, res.Rows, o.Videos, res.Missing[0].Want, report)
	}
	lf := o.LabelFile
	if lf == "" {
		lf = labelsFile(o.Out)
	}
	if err := writeLists(o.F, o.Out, lf, &dataset.List{Labels: labels, Entries: res.Entries}, o.Split, o.Seed); err != nil {
		return err
	}
	if n := len(res.Missing); n > 0 {
		fmt.Fprintf(o.F.IO.ErrOut, "%d of %d rows of %s have no video under %s: listed in %s\n", n, res.Rows, o.CSV, o.Videos, report)
	} else {
		fmt.Fprintf(o.F.IO.ErrOut, "every row of %s has its video; report %s\n", o.CSV, report)
	}
	return nil
}
