package weights

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/weights/convert"
)

// ConvertOptions are `zoo weights convert`'s inputs.
type ConvertOptions struct {
	F        *cmdutil.Factory
	Src, Dir string
}

// NewCmdConvert returns `zoo weights convert`; runF replaces convertRun in
// tests.
func NewCmdConvert(f *cmdutil.Factory, runF func(context.Context, *ConvertOptions) error) *cobra.Command {
	opts := &ConvertOptions{F: f}
	cmd := &cobra.Command{
		Use:   "convert SRC DIR",
		Short: "Convert a PyTorch TSM checkpoint (MIT's, mmaction2's) into a Paddle parameter directory",
		Long: `convert reads a PyTorch checkpoint of TSM (mit-han-lab/temporal-shift-module's,
zip or legacy torch.save format, or mmaction2's), maps its tensors onto Paddle's
names (the fc transposed to Paddle's [in, out]) and writes DIR: one fluid file
per variable, as Paddle's own weights, plus zoo_conventions.json, the
conventions the checkpoint was trained with (shift direction, dropout at
inference, consensus). zoo run --weights DIR reads that file, so the converted
directory infers as the checkpoint does (docs/tsm.md, "Using PyTorch TSM
weights"). DIR is replaced atomically.`,
		Example: `  zoo weights convert TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth tsm_mit
  zoo run TSM infer --weights tsm_mit --video_path demo.mp4`,
		Args: cmdutil.ExactArgs(2, "convert needs a PyTorch checkpoint and a directory to write, e.g. `zoo weights convert tsm.pth tsm_dir`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Src, opts.Dir = args[0], args[1]
			if fi, err := os.Stat(opts.Src); err != nil || !fi.Mode().IsRegular() {
				return cmdutil.FlagErrorf("convert %s: no such file (a PyTorch .pth checkpoint)", opts.Src)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return convertRun(opts)
		},
	}
	return cmd
}

func convertRun(opts *ConvertOptions) error {
	r, err := convert.Read(opts.Src)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if err := convert.Write(opts.Dir, r); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	kind := "TSM"
	if !r.Shift {
		kind = "TSN"
	}
	fmt.Fprintf(opts.F.IO.Out, "%s: %s's %s-ResNet-%d, %d variables written; conventions: shift_direction %s, infer_dropout %s, consensus %s\n",
		opts.Dir, r.Source, kind, r.Depth, len(r.Tensors), r.Conventions.ShiftDirection, r.Conventions.InferDropout, r.Conventions.Consensus)
	fmt.Fprintf(opts.F.IO.ErrOut, "run it with: zoo run TSM infer --weights %s --set MODEL.num_layers=%d --set MODEL.num_classes=%d\n", opts.Dir, r.Depth, r.Tensors["fc_0.b_0"].Dims[0])
	return nil
}
