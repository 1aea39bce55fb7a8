// Package data implements `zoo data`: list (a class-per-folder tree),
// kinetics (Kinetics' annotation CSVs against a downloaded folder) and check
// (decode every video of a list), the steps from videos on disk to the
// "path label" lists `zoo run` takes. The work is package dataset's; this
// package parses flags and prints.
package data

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/dataset"
	"github.com/zoo-ml/zoo/host/cmdutil"
)

// NewCmdData returns the `data` command group.
func NewCmdData(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Make and check the \"path label\" lists training reads",
		Long: `data turns videos on disk into the "path label" lists zoo run's --filelist and
the configs' filelist keys take, and finds unreadable videos before training
does.

  list      a class-per-folder tree (DIR/<class>/<video>) -> list + label file
  kinetics  Kinetics-400/600/700 annotation CSVs + a downloaded folder -> list
  check     decode every video of a list; exit 1 if any fails

Paths in the lists are relative to the list file, so a list moves with its
videos. See docs/data.md.`,
		Example: `  zoo data list kinetics/train --out lists/train.list --split val=0.1
  zoo data kinetics kinetics400/train.csv --videos kinetics/train --out lists/train.list
  zoo data check lists/train.list --write-clean lists/train.clean.list`,
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdKinetics(f, nil), NewCmdCheck(f, nil))
	return cmd
}

// sibling is path with suffix inserted before its extension:
// lists/train.list + "_val" -> lists/train_val.list.
func sibling(path, suffix string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + suffix + ext
}

// labelsFile is where a list's label file goes unless --label-file says.
func labelsFile(out string) string {
	return filepath.Join(filepath.Dir(out), "labels.txt")
}

// parseSplit reads --split NAME=FRACTION.
func parseSplit(s string) (string, float64, error) {
	name, v, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	frac, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if !ok || name == "" || strings.ContainsAny(name, "/\\ ") || err != nil || !(frac > 0 && frac < 1) {
		return "", 0, cmdutil.FlagErrorf("--split %q: want NAME=FRACTION with 0 < FRACTION < 1, e.g. --split val=0.1", s)
	}
	return name, frac, nil
}

// writeLists writes the list (and with a split the two parts beside it)
// and the label file, and says what it wrote on stderr.
func writeLists(f *cmdutil.Factory, out, labelOut string, l *dataset.List, split string, seed uint64) error {
	if err := dataset.WriteList(out, l.Entries); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "wrote %s: %d videos, %d classes\n", out, len(l.Entries), countClasses(l.Entries))
	if split != "" {
		name, frac, err := parseSplit(split)
		if err != nil {
			return err
		}
		train, val := dataset.Split(l.Entries, frac, seed)
		tp, vp := sibling(out, "_train"), sibling(out, "_"+name)
		if err := dataset.WriteList(tp, train); err != nil {
			return err
		}
		if err := dataset.WriteList(vp, val); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "wrote %s: %d videos; %s: %d videos (%s=%g of each class, seed %d)\n", tp, len(train), vp, len(val), name, frac, seed)
	}
	if err := dataset.WriteLabels(labelOut, l.Labels); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "wrote %s: %d class names (index = line - 1)\n", labelOut, len(l.Labels))
	return nil
}

func countClasses(es []dataset.Entry) int {
	seen := map[int]bool{}
	for _, e := range es {
		if e.Label >= 0 {
			seen[e.Label] = true
		}
	}
	return len(seen)
}
