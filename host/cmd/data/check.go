package data

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/dataset"
	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/iostreams"
)

// CheckOptions are `zoo data check`'s inputs.
type CheckOptions struct {
	F          *cmdutil.Factory
	List       string
	SegNum     int
	SegLen     int
	Workers    int
	JSON       bool
	WriteClean string
}

// NewCmdCheck returns the command; runF replaces checkRun in tests.
func NewCmdCheck(f *cmdutil.Factory, runF func(*CheckOptions) error) *cobra.Command {
	o := &CheckOptions{F: f}
	cmd := &cobra.Command{
		Use:   "check LIST",
		Short: "Decode every video of a list and report the ones training could not read",
		Long: `check decodes every video of a "path label" list (or of a directory) in
parallel, with the ffmpeg decode the training reader runs, keeping no frames
(memory does not grow with the videos), and reports per file its frames,
size, frame size and codec, or why it fails: missing, zero bytes, not a
video, truncated (fewer frames than the container indexes, or a container
cut off), cannot decode, too few frames for --seg_num.

Progress goes to stderr on a terminal; --json prints the whole report for
scripts. The exit status is 1 if any video failed; --write-clean LIST then
writes the lines of the good ones.`,
		Example: `  zoo data check lists/train.list
  zoo data check lists/train.list --json > report.json
  zoo data check lists/train.list --write-clean lists/train.clean.list`,
		Args: cmdutil.ExactArgs(1, "data check needs one list, e.g. `zoo data check train.list`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.List = args[0]
			if o.SegNum < 1 || o.SegLen < 1 {
				return cmdutil.FlagErrorf("--seg_num %d, --seglen %d: both must be at least 1", o.SegNum, o.SegLen)
			}
			if o.Workers < 1 {
				return cmdutil.FlagErrorf("--workers %d: must be at least 1", o.Workers)
			}
			if runF != nil {
				return runF(o)
			}
			return checkRun(cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.SegNum, "seg-num", 8, "the model's seg_num: a video needs seg_num*seglen frames")
	fl.IntVar(&o.SegLen, "seglen", 1, "the model's seglen")
	fl.IntVar(&o.Workers, "workers", max(1, runtime.NumCPU()), "videos decoded at once (one ffmpeg each)")
	fl.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fl.StringVar(&o.WriteClean, "write-clean", "", "write the list of the videos that passed here")
	return cmd
}

func checkRun(cmd *cobra.Command, o *CheckOptions) error {
	items, err := dataset.ReadList(o.List)
	if err != nil {
		return err
	}
	io := o.F.IO
	var progress func(done, failed int)
	if io.ErrTTY {
		progress = func(done, failed int) {
			const width = 30
			fill := done * width / len(items)
			fmt.Fprintf(io.ErrOut, "\r[%s%s] %d/%d checked, %d failed", strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, len(items), failed)
		}
	}
	reps, err := dataset.Check(cmd.Context(), items, dataset.CheckOptions{
		SegNum: o.SegNum, SegLen: o.SegLen, Workers: o.Workers, Progress: progress,
	})
	if io.ErrTTY {
		fmt.Fprint(io.ErrOut, "\r\033[K")
	}
	if err != nil {
		return err
	}
	failed := 0
	var good []dataset.Entry
	for _, r := range reps {
		if !r.OK {
			failed++
		} else {
			good = append(good, dataset.Entry{Path: r.Path, Label: r.Label})
		}
	}
	if o.JSON {
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			List   string               `json:"list"`
			Videos int                  `json:"videos"`
			Failed int                  `json:"failed"`
			SegNum int                  `json:"seg_num"`
			Files  []dataset.FileReport `json:"files"`
		}{o.List, len(reps), failed, o.SegNum, reps}); err != nil {
			return err
		}
	} else {
		w := 0
		for _, r := range reps {
			w = max(w, len(r.Where))
		}
		for _, r := range reps {
			if r.OK {
				fmt.Fprintf(io.Out, "ok    %-*s  %4d frames  %dx%d  %-6s %s\n", w, r.Where, r.Frames, r.Width, r.Height, r.Codec, iostreams.HumanBytes(r.Size))
			} else {
				fmt.Fprintf(io.Out, "FAIL  %-*s  %s: %s\n", w, r.Where, r.Reason, r.Detail)
			}
		}
	}
	if o.WriteClean != "" {
		if err := dataset.WriteList(o.WriteClean, good); err != nil {
			return err
		}
		fmt.Fprintf(io.ErrOut, "wrote %s: the %d videos that passed\n", o.WriteClean, len(good))
	}
	if failed > 0 {
		return fmt.Errorf("%s: %d of %d videos failed the check (see the report above)", o.List, failed, len(reps))
	}
	fmt.Fprintf(io.ErrOut, "%s: all %d videos decode\n", o.List, len(reps))
	return nil
}
