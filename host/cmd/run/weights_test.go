package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/registry"
	"github.com/zoo-ml/zoo/sdk"
)

// TestResolveWeights covers which directories a session starts from. The
// store is a temporary ZOO_WEIGHTS_DIR with the sets already in place (or
// absent, offline), so nothing touches the network.
func TestResolveWeights(t *testing.T) {
	store := t.TempDir()
	for _, d := range []string{"pre", "trained"} {
		if err := os.Mkdir(filepath.Join(store, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("ZOO_WEIGHTS_DIR", store)
	t.Setenv("ZOO_WEIGHTS_MIRROR", "")
	t.Setenv("ZOO_OFFLINE", "1")
	flagDir := t.TempDir()
	save := t.TempDir()
	full := registry.Model{Info: sdk.ModelInfo{Name: "M", WeightSets: []sdk.WeightSet{
		{Name: "m_pre", Dir: "pre", URL: "http://127.0.0.1:1/m_pre.tar.gz", Use: sdk.UsePretrain},
		{Name: "m_trained", Dir: "trained", URL: "http://127.0.0.1:1/m_trained.tar.gz", Use: sdk.UseWeights},
	}}}
	absent := registry.Model{Info: sdk.ModelInfo{Name: "M", WeightSets: []sdk.WeightSet{
		{Name: "m_gone", Dir: "gone", URL: "http://127.0.0.1:1/m_gone.tar.gz", Use: sdk.UseWeights},
		{Name: "m_gone_pre", Dir: "gone_pre", URL: "http://127.0.0.1:1/m_gone_pre.tar.gz", Use: sdk.UsePretrain},
	}}}
	none := registry.Model{Info: sdk.ModelInfo{Name: "M", Tasks: []string{"train", "test", "infer"}}}

	tests := []struct {
		name    string
		m       registry.Model
		o       Options
		want    string // fmt of the map
		wantErr string
		usage   bool // a *FlagError
	}{
		{"train built-in job: from scratch", full, Options{Mode: "train"}, "map[]", "", false},
		{"train config: published pretrain", full, Options{Mode: "train", Config: "c.txt"}, "map[pretrain:" + filepath.Join(store, "pre") + "]", "", false},
		{"train resume: no pretrain", full, Options{Mode: "train", Config: "c.txt", Resume: flagDir}, "map[]", "", false},
		{"train --pretrain wins", full, Options{Mode: "train", Config: "c.txt", Pretrain: flagDir}, "map[pretrain:" + flagDir + "]", "", false},
		{"train config, model without pretrain", none, Options{Mode: "train", Config: "c.txt"}, "map[]", "", false},
		{"test config: published weights", full, Options{Mode: "test", Config: "c.txt"}, "map[weights:" + filepath.Join(store, "trained") + "]", "", false},
		{"infer --weights wins", full, Options{Mode: "infer", Config: "c.txt", Weights: flagDir}, "map[weights:" + flagDir + "]", "", false},
		{"test built-in job, no checkpoint", full, Options{Mode: "test", SaveDir: save}, "", "no M checkpoint in " + save + ": run `zoo run M train` first", false},
		{"test config, model publishes none", none, Options{Mode: "test", Config: "c.txt"}, "", "model M publishes no weights: pass --weights DIR", true},
		{"test config, absent offline", absent, Options{Mode: "test", Config: "c.txt"}, "",
			"download http://127.0.0.1:1/m_gone.tar.gz elsewhere and run: zoo weights import m_gone FILE.tar.gz; or pass --weights DIR", false},
		{"train config, absent offline", absent, Options{Mode: "train", Config: "c.txt"}, "",
			"zoo weights import m_gone_pre FILE.tar.gz; or pass --pretrain DIR", false},
		{"train --pretrain none", full, Options{Mode: "train", Config: "c.txt", Pretrain: PretrainNone}, "map[]", "", false},
		{"infer data, no config: published weights", full, Options{Mode: "infer", VideoPath: "v.mp4"}, "map[weights:" + filepath.Join(store, "trained") + "]", "", false},
		{"train list, no config: published pretrain", full, Options{Mode: "train", Filelist: "l", changed: map[string]bool{"filelist": true}}, "map[pretrain:" + filepath.Join(store, "pre") + "]", "", false},
		{"present set: no fit check", full, Options{Mode: "test", Config: "c.txt", fits: refuse}, "map[weights:" + filepath.Join(store, "trained") + "]", "", false},
		{"absent set: fit check before the fetch", absent, Options{Mode: "test", Config: "c.txt", fits: refuse}, "", "m_gone does not fit", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			f := &cmdutil.Factory{IO: &iostreams.IOStreams{Out: &bytes.Buffer{}, ErrOut: &errb}}
			o := tc.o
			if o.SaveDir == "" {
				o.SaveDir = save
			}
			got, err := ResolveWeights(context.Background(), f, tc.m, &o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				var fe *cmdutil.FlagError
				if errors.As(err, &fe) != tc.usage {
					t.Errorf("usage error %v, want %v", errors.As(err, &fe), tc.usage)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Errorf("weights %s, want %s", s, tc.want)
			}
		})
	}
}

func refuse(_ context.Context, ws sdk.WeightSet) error { return fmt.Errorf("%s does not fit", ws.Name) }
