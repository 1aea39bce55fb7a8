package weights

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/weights"
)

var sets = []weights.Set{
	{Name: "ResNet50_pretrained", Model: "TSM", Use: "pretrain"},
	{Name: "tsm_kinetics", Model: "TSM", Use: "weights"},
	{Name: "alpha_w", Model: "Alpha", Use: "weights"},
}

func names(ss []weights.Set) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func TestSelectSets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{"none is all", nil, []string{"ResNet50_pretrained", "tsm_kinetics", "alpha_w"}, ""},
		{"a set", []string{"tsm_kinetics"}, []string{"tsm_kinetics"}, ""},
		{"case-insensitive", []string{"TSM_Kinetics"}, []string{"tsm_kinetics"}, ""},
		{"a model's sets", []string{"tsm"}, []string{"ResNet50_pretrained", "tsm_kinetics"}, ""},
		{"each once, in order", []string{"alpha_w", "TSM", "tsm_kinetics"}, []string{"alpha_w", "ResNet50_pretrained", "tsm_kinetics"}, ""},
		{"unknown", []string{"alpha_w", "resnet"}, nil, `unknown weight set or model "resnet": known weight sets are ResNet50_pretrained, tsm_kinetics, alpha_w (of models TSM, Alpha)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := selectSets(sets, tc.args)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(got), tc.want) {
				t.Errorf("sets %v, want %v", names(got), tc.want)
			}
		})
	}
	if _, err := findSet(nil, "x"); err == nil || !strings.Contains(err.Error(), "publish no weight sets") {
		t.Errorf("findSet with no sets: %v", err)
	}
	if s, err := findSet(sets, "ALPHA_W"); err != nil || s.Model != "Alpha" {
		t.Errorf("findSet(ALPHA_W) = %+v, %v", s, err)
	}
}

// The verbs' RunE only parse: check what reaches the run function.
func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		want    string
		wantErr string // a usage error (exit 2)
	}{
		{[]string{"fetch"}, "fetch [] quiet=false mirror=", ""},
		{[]string{"fetch", "-q", "--mirror", "http://m/x", "TSM", "alpha_w"}, "fetch [TSM alpha_w] quiet=true mirror=http://m/x", ""},
		{[]string{"list", "--json"}, "list json=true", ""},
		{[]string{"list", "extra"}, "", `unknown command "extra"`},
		{[]string{"path", "tsm_kinetics"}, "path tsm_kinetics", ""},
		{[]string{"path"}, "", "path needs one weight set"},
		{[]string{"verify", "a", "b"}, "verify [a b]", ""},
		{[]string{"rm", "a"}, "rm a", ""},
		{[]string{"rm"}, "", "rm needs one weight set"},
		{[]string{"import", "a"}, "", "import needs a weight set and an archive"},
		{[]string{"import", "a", "/nonexistent.tar.gz"}, "", "archive /nonexistent.tar.gz: no such file"},
		{[]string{"import", "a", "."}, "", "archive .: not a file"},
		{[]string{"import", "-q", "a", "weights_test.go"}, "import a weights_test.go quiet=true", ""},
		{[]string{"inspect", "m.pdparams"}, "inspect m.pdparams names= model= json=false", ""},
		{[]string{"inspect", "--json", "--names", "n.txt", "__params__"}, "inspect __params__ names=n.txt model= json=true", ""},
		{[]string{"inspect", "--model", "TSM", "__params__"}, "inspect __params__ names= model=TSM json=false", ""},
		{[]string{"inspect"}, "", "inspect needs one path"},
		{[]string{"inspect", "a", "b"}, "", "inspect needs one path"},
		{[]string{"inspect", "--names", "n", "--model", "TSM", "x"}, "", "--names and --model both name the variables"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IO: ios}
			var got string
			cmd := NewCmdWeights(f)
			cmd.ResetCommands()
			cmd.AddCommand(
				NewCmdFetch(f, func(_ context.Context, o *FetchOptions) error {
					got = fmt.Sprintf("fetch %v quiet=%v mirror=%s", o.Names, o.Quiet, o.F.WeightsMirror)
					return nil
				}),
				NewCmdList(f, func(_ context.Context, o *ListOptions) error { got = fmt.Sprintf("list json=%v", o.JSON); return nil }),
				NewCmdPath(f, func(_ context.Context, o *PathOptions) error { got = "path " + o.Name; return nil }),
				NewCmdVerify(f, func(_ context.Context, o *VerifyOptions) error { got = fmt.Sprintf("verify %v", o.Names); return nil }),
				NewCmdRm(f, func(_ context.Context, o *RmOptions) error { got = "rm " + o.Name; return nil }),
				NewCmdInspect(f, func(_ context.Context, o *InspectOptions) error {
					got = fmt.Sprintf("inspect %s names=%s model=%s json=%v", o.Path, o.Names, o.Model, o.JSON)
					return nil
				}),
				NewCmdImport(f, func(_ context.Context, o *ImportOptions) error {
					got = fmt.Sprintf("import %s %s quiet=%v", o.Name, o.Archive, o.Quiet)
					return nil
				}),
			)
			cmd.SetArgs(tc.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				var fe *cmdutil.FlagError
				if !errors.As(err, &fe) && !strings.Contains(tc.wantErr, "unknown command") {
					t.Errorf("%v is not a usage error (exit 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("run got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNameAfterSet(t *testing.T) {
	t.Parallel()
	set := weights.Set{Name: "s", Tensors: map[string]weights.Spec{
		"fc_0.w_0": {DType: weights.FP32, Dims: []int64{4, 2}},
		"conv_w":   {DType: weights.FP32, Dims: []int64{2, 3, 1, 1}},
	}}
	rec := func(dims ...int64) *weights.Tensor {
		return &weights.Tensor{DType: weights.FP32, Dims: dims}
	}
	ts := []*weights.Tensor{rec(2, 3, 1, 1), rec(4, 2)}
	if err := nameAfterSet(ts, set); err != nil || ts[0].Name != "conv_w" || ts[1].Name != "fc_0.w_0" {
		t.Errorf("nameAfterSet = %v, names %q %q; want conv_w, fc_0.w_0", err, ts[0].Name, ts[1].Name)
	}
	swapped := []*weights.Tensor{rec(4, 2), rec(2, 3, 1, 1)}
	if err := nameAfterSet(swapped, set); err == nil || !strings.Contains(err.Error(), "record 0 is FP32 [4 2], but s's variable 0 in sorted order, conv_w, is FP32 [2 3 1 1]") || swapped[0].Name != "" {
		t.Errorf("records in another order: %v (names %q)", err, swapped[0].Name)
	}
	if err := nameAfterSet(ts[:1], set); err == nil || !strings.Contains(err.Error(), "1 records, s has 2") {
		t.Errorf("one record: %v", err)
	}
}
