package weights

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/weights"
	"github.com/zoo-ml/zoo/weights/torch"
)

// InspectOptions are `zoo weights inspect`'s inputs.
type InspectOptions struct {
	F     *cmdutil.Factory
	Path  string
	Names string // a file of variable names, for a combined file
	Model string // or the model whose weight set names them
	JSON  bool
}

// NewCmdInspect returns `zoo weights inspect`; runF replaces inspectRun in
// tests.
func NewCmdInspect(f *cmdutil.Factory, runF func(context.Context, *InspectOptions) error) *cobra.Command {
	opts := &InspectOptions{F: f}
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "List the variables of a Paddle parameter file or directory: name, dtype, shape",
		Long: `inspect reads Paddle parameters in any of their forms and prints one line per
variable (name, dtype, shape) and the totals:

  a directory of one file per variable (save_params, save_persistables, a
  zoo checkpoint), or one such file;
  a .pdparams pickle (paddle.save, paddle.static.save; numpy 1 or 2);
  a combined file (__params__, .pdiparams: save_combine). Its records carry
  no names: --names FILE (one name per line, the file's complete list in
  any order, as Paddle sorts them) or --model MODEL (the names of the
  model's weight set with as many variables) names them; without either
  they are listed as #0, #1, ...

It reads files only: nothing is installed or changed.`,
		Example: `  zoo weights inspect ~/.paddle/weights/tsm_kinetics
  zoo weights inspect model.pdparams --json
  zoo weights inspect inference/model.pdiparams --names names.txt
  zoo weights inspect __params__ --model TSM`,
		Args: cmdutil.ExactArgs(1, "inspect needs one path (a parameter directory or file, a .pdparams), e.g. `zoo weights inspect model.pdparams`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			if opts.Names != "" && opts.Model != "" {
				return cmdutil.FlagErrorf("--names and --model both name the variables: pass one")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return inspectRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Names, "names", "", "combined file: a file of its variable names, one per line")
	cmd.Flags().StringVar(&opts.Model, "model", "", "combined file: name its variables after this model's weight set")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON for scripts")
	return cmd
}

// InspectTensor is one variable in `zoo weights inspect --json`.
type InspectTensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Numel int64   `json:"numel"`
	Bytes int64   `json:"bytes"`
}

// InspectResult is `zoo weights inspect --json`'s output.
type InspectResult struct {
	Path      string          `json:"path"`
	Form      string          `json:"form"` // directory, file, combined or pdparams
	Variables int             `json:"variables"`
	Numel     int64           `json:"total_numel"`
	Bytes     int64           `json:"total_bytes"`
	ByDType   map[string]int  `json:"by_dtype"`
	Unnamed   bool            `json:"unnamed,omitempty"` // a combined file without names
	Skipped   []string        `json:"skipped,omitempty"` // a directory's files that are not parameters
	Tensors   []InspectTensor `json:"tensors"`
}

func inspectRun(ctx context.Context, opts *InspectOptions) error {
	var names []string
	if opts.Names != "" {
		var err error
		if names, err = readNames(opts.Names); err != nil {
			return err
		}
	}
	var ps *weights.Params
	var err error
	if torch.IsTorch(opts.Path) && names == nil {
		c, terr := torch.Read(opts.Path)
		if terr != nil {
			return fmt.Errorf("inspect: %w", terr)
		}
		ps, err = &weights.Params{Form: "torch " + c.Format, Tensors: c.Tensors}, nil
	} else {
		ps, err = weights.ReadParams(opts.Path, names)
	}
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	form, ts := ps.Form, ps.Tensors
	if opts.Model != "" {
		if form != weights.FormCombined || names != nil {
			return cmdutil.FlagErrorf("--model %s: names are for a combined file; %s is a %s", opts.Model, opts.Path, form)
		}
		if err := nameAfterModel(ctx, opts, ts); err != nil {
			return err
		}
	}
	res := InspectResult{Path: opts.Path, Form: form, ByDType: map[string]int{}, Variables: len(ts), Skipped: ps.Skipped, Tensors: []InspectTensor{}}
	for i, t := range ts {
		name := t.Name
		if name == "" {
			name, res.Unnamed = fmt.Sprintf("#%d", i), true
		}
		n := t.Numel()
		res.Tensors = append(res.Tensors, InspectTensor{Name: name, DType: t.DType.String(), Shape: slices.Clone(t.Dims), Numel: n, Bytes: int64(len(t.Data))})
		res.Numel += n
		res.Bytes += int64(len(t.Data))
		res.ByDType[t.DType.String()]++
	}
	io := opts.F.IO
	if opts.JSON {
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDTYPE\tSHAPE")
	for _, t := range res.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.DType, shapeString(t.Shape))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var types []string
	for _, k := range slices.Sorted(maps.Keys(res.ByDType)) {
		types = append(types, fmt.Sprintf("%d %s", res.ByDType[k], k))
	}
	fmt.Fprintf(io.Out, "%d variables (%s), %d values, %d bytes; %s\n", len(ts), strings.Join(types, ", "), res.Numel, res.Bytes, form)
	if len(ps.Skipped) > 0 {
		fmt.Fprintf(io.ErrOut, "skipped %s: not parameter files\n", strings.Join(ps.Skipped, ", "))
	}
	if res.Unnamed {
		fmt.Fprintf(io.ErrOut, "%s is a combined file: its records have no names; --names FILE or --model MODEL names them\n", opts.Path)
	}
	return nil
}

func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// readNames reads a names file: one variable per line, blank lines and
// lines starting with # skipped.
func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, cmdutil.FlagErrorf("--names %s: %v", path, err)
	}
	defer f.Close()
	names := []string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names = append(names, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--names %s: %w", path, err)
	}
	if len(names) == 0 {
		return nil, cmdutil.FlagErrorf("--names %s: no names in the file (one variable name per line)", path)
	}
	return names, nil
}

// nameAfterModel names a combined file's records after the model's weight
// set with as many variables.
func nameAfterModel(ctx context.Context, opts *InspectOptions, ts []*weights.Tensor) error {
	all, err := knownSets(ctx, opts.F)
	if err != nil {
		return err
	}
	var counts []string
	for _, s := range all {
		if !strings.EqualFold(s.Model, opts.Model) || len(s.Tensors) == 0 {
			continue
		}
		if len(s.Tensors) != len(ts) {
			counts = append(counts, fmt.Sprintf("%s has %d", s.Name, len(s.Tensors)))
			continue
		}
		if err := nameAfterSet(ts, s); err != nil {
			return fmt.Errorf("inspect %s: %w: not %s's parameters", opts.Path, err, opts.Model)
		}
		return nil
	}
	if counts == nil {
		return cmdutil.FlagErrorf("--model %s: no such model, or it publishes no weight set with shapes (zoo list shows the models)", opts.Model)
	}
	return fmt.Errorf("inspect %s: %d records, but %s: not %s's parameters; pass --names FILE", opts.Path, len(ts), strings.Join(counts, ", "), opts.Model)
}

// nameAfterSet names records after s's variables in sorted order (as
// save_combine writes them), checking each record's dtype and shape.
func nameAfterSet(ts []*weights.Tensor, s weights.Set) error {
	names := slices.Sorted(maps.Keys(s.Tensors))
	if len(names) != len(ts) {
		return fmt.Errorf("%d records, %s has %d variables", len(ts), s.Name, len(names))
	}
	for i, n := range names {
		if w := s.Tensors[n]; ts[i].DType != w.DType || !slices.Equal(ts[i].Dims, w.Dims) {
			return fmt.Errorf("record %d is %s %v, but %s's variable %d in sorted order, %s, is %s %v", i, ts[i].DType, ts[i].Dims, s.Name, i, n, w.DType, w.Dims)
		}
	}
	for i, n := range names {
		ts[i].Name = n
	}
	return nil
}
