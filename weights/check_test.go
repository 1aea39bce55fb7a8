package weights

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func stemSpec() map[string]Spec {
	return map[string]Spec{
		"conv1_weights":          {FP32, []int64{64, 3, 7, 7}},
		"bn_conv1_scale":         {FP32, []int64{64}},
		"res2a_branch2a_weights": {FP32, []int64{64, 64, 1, 1}},
	}
}

func TestCheckAndLoad(t *testing.T) {
	dir := stemDir(t)
	extra, err := Check(dir, stemSpec())
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) != 52 || slices.Contains(extra, "conv1_weights") {
		t.Errorf("Check: %d extra, want 52 (the other variables)", len(extra))
	}
	ts, extra2, err := Load(dir, stemSpec())
	if err != nil || len(ts) != 3 || len(extra2) != 52 {
		t.Fatalf("Load: %d tensors, %d extra, %v", len(ts), len(extra2), err)
	}

	cases := []struct {
		name   string
		modify func(map[string]Spec)
		want   string
	}{
		{"wrong shape", func(m map[string]Spec) { m["res2a_branch2a_weights"] = Spec{FP32, []int64{64, 32, 1, 1}} },
			"weights: res2a_branch2a_weights in " + dir + ": shape [64 64 1 1], want [64 32 1 1]"},
		{"wrong dtype", func(m map[string]Spec) { m["bn_conv1_scale"] = Spec{FP16, []int64{64}} },
			"weights: bn_conv1_scale in " + dir + ": dtype FP32, want FP16"},
		{"missing", func(m map[string]Spec) {
			m["fc_0.w_0"] = Spec{FP32, []int64{2048, 400}}
			m["fc_0.b_0"] = Spec{FP32, []int64{400}}
		},
			"weights: " + dir + ": 2 needed variables missing: fc_0.b_0, fc_0.w_0"},
		{"both", func(m map[string]Spec) {
			m["fc_0.w_0"] = Spec{FP32, []int64{2048, 400}}
			m["conv1_weights"] = Spec{FP32, []int64{64, 3, 3, 3}}
			m["bn_conv1_scale"] = Spec{FP32, []int64{32}}
		}, "weights: bn_conv1_scale in " + dir + ": shape [64], want [32] (and 1 more wrong); weights: " + dir + ": 1 needed variables missing: fc_0.w_0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := stemSpec()
			tc.modify(want)
			_, err := Check(dir, want)
			var me *MismatchError
			if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) || err.Error() != tc.want {
				t.Fatalf("Check error\n got %v\nwant %s", err, tc.want)
			}
			if _, _, err := Load(dir, want); err == nil || err.Error() != tc.want {
				t.Fatalf("Load error %v, want %s", err, tc.want)
			}
		})
	}
	// The same checks on tensors in memory (from a combined file).
	all, err := ReadDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := stemSpec()
	w["res2a_branch2a_weights"] = Spec{FP32, []int64{64, 32, 1, 1}}
	if _, err := CheckTensors("x.pdiparams", all, w); err == nil || err.Error() != "weights: res2a_branch2a_weights in x.pdiparams: shape [64 64 1 1], want [64 32 1 1]" {
		t.Errorf("CheckTensors = %v", err)
	}
	if extra, err := CheckTensors("x", all, stemSpec()); err != nil || len(extra) != 52 {
		t.Errorf("CheckTensors: %d extra, %v", len(extra), err)
	}
	if _, err := Check(filepath.Join(t.TempDir(), "none"), stemSpec()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Check(missing dir) = %v, want ErrNotExist", err)
	}
}

func TestManyMissingListedShort(t *testing.T) {
	want := map[string]Spec{}
	for _, c := range "abcdefghijkl" {
		want[string(c)] = Spec{FP32, []int64{1}}
	}
	_, err := Check(t.TempDir(), want)
	if err == nil || !strings.Contains(err.Error(), "12 needed variables missing: a, b, c, d, e, f, g, h and 4 more") {
		t.Errorf("Check = %v", err)
	}
}
