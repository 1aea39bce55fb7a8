package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/internal/testplugins"
	"github.com/zoo-ml/zoo/registry"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zoo-registry-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := testplugins.Build(dir, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	if kids := testplugins.Children(); len(kids) > 0 {
		fmt.Fprintf(os.Stderr, "plugin processes outlived the tests: %v\n", kids)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// place links the named test plugins into a fresh directory, as the file
// names given (name -> built plugin).
func place(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for as, built := range files {
		if err := os.Link(filepath.Join(binDir, "zoo-plugin-"+built), filepath.Join(dir, as)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newRegistry(t *testing.T, exeDir string, path ...string) (*registry.Registry, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return &registry.Registry{
		ExeDir:     exeDir,
		SearchPath: path,
		Home:       t.TempDir(),
		Logger:     hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug}),
		Self:       zooBuild(t),
	}, &logs
}

// zooBuild is the Build of a zoo built with the test plugins: theirs (the
// test binary's own build info has no version to compare).
func zooBuild(t testing.TB) registry.Build {
	t.Helper()
	b, err := registry.ReadBuild(filepath.Join(binDir, "zoo-plugin-two"))
	if err != nil || b.Module != "github.com/zoo-ml/zoo" {
		t.Fatalf("build info of the test plugin: %+v %v", b, err)
	}
	return b
}

// pin sets p's pin to its file's sha256, as Discover does for a plugin it
// trusts.
func pin(p registry.Plugin) registry.Plugin {
	if b, err := os.ReadFile(p.Path); err == nil {
		sum := sha256.Sum256(b)
		p.Pin, p.PinFrom = sum[:], registry.PinSameBuild
	}
	return p
}

func noOrphans(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for len(testplugins.Children()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if kids := testplugins.Children(); len(kids) > 0 {
			t.Errorf("plugin processes outlived the test: %v", kids)
		}
	})
}

func TestModelsFromRealPlugin(t *testing.T) {
	noOrphans(t)
	r, _ := newRegistry(t, place(t, map[string]string{"zoo-plugin-two": "two"}))
	models, problems, err := r.Models(context.Background())
	if err != nil || len(problems) > 0 {
		t.Fatalf("Models: %v %v", err, problems)
	}
	if len(models) != 2 || models[0].Info.Name != "Alpha" || models[1].Info.Name != "Beta" {
		t.Fatalf("models = %+v, want Alpha and Beta", models)
	}
	a := models[0]
	if a.Plugin.Name != "zoo-plugin-two" || a.Plugin.Source != registry.SourceBundled || a.Minor != sdk.ProtocolMinor {
		t.Errorf("plugin = %+v minor %d", a.Plugin, a.Minor)
	}
	if got := len(a.Info.Config); got != 13 {
		t.Errorf("Alpha has %d config keys, want 13", got)
	}
	if a.Info.Config[1].Default != float64(2) {
		t.Errorf("TRAIN.epoch default = %#v, want 2 (JSON number)", a.Info.Config[1].Default)
	}
	if ws := a.Info.WeightSets; len(ws) != 1 || ws[0].Name != "alpha_w" || ws[0].Required[0] != "w" {
		t.Errorf("weight sets = %+v", ws)
	}
	for _, tc := range []struct{ name, want string }{{"alpha", "Alpha"}, {"BETA", "Beta"}} {
		m, err := registry.Find(models, tc.name)
		if err != nil || m.Info.Name != tc.want {
			t.Errorf("Find(%q) = %v, %v", tc.name, m.Info.Name, err)
		}
	}
	_, err = registry.Find(models, "gamma")
	if !errors.Is(err, registry.ErrUnknownModel) || !strings.Contains(err.Error(), "Alpha, Beta") {
		t.Errorf("Find(gamma) = %v, want unknown model listing Alpha, Beta", err)
	}
}

func TestLookupOrderAndDuplicates(t *testing.T) {
	noOrphans(t)
	exe := place(t, map[string]string{"zoo-plugin-two": "two"})
	// The same file name later in the path is shadowed; another plugin
	// serving the same model names loses to the first.
	other := place(t, map[string]string{"zoo-plugin-two": "two", "zoo-plugin-again": "two"})
	r, logs := newRegistry(t, exe, other)
	if _, _, err := r.Install(context.Background(), filepath.Join(other, "zoo-plugin-again"), true, nil); err != nil {
		t.Fatalf("install in place: %v", err)
	}
	ps, err := r.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Path != filepath.Join(exe, "zoo-plugin-two") || ps[1].Name != "zoo-plugin-again" || ps[1].PinFrom != "lock" {
		t.Fatalf("Discover = %+v", ps)
	}
	models, problems, err := r.Models(context.Background())
	if err != nil || len(problems) > 0 {
		t.Fatalf("Models: %v %v", err, problems)
	}
	if len(models) != 2 || models[0].Plugin.Name != "zoo-plugin-two" {
		t.Fatalf("models = %+v", models)
	}
	for _, m := range models {
		if len(m.Shadowed) != 1 || m.Shadowed[0].Name != "zoo-plugin-again" {
			t.Errorf("%s: shadowed %+v, want zoo-plugin-again", m.Info.Name, m.Shadowed)
		}
	}
	if !strings.Contains(logs.String(), "model Alpha is served by") || !strings.Contains(logs.String(), "using zoo-plugin-two (found first), ignoring zoo-plugin-again") {
		t.Errorf("no clear duplicate warning in logs:\n%s", logs.String())
	}
}

func TestLaunchFailures(t *testing.T) {
	noOrphans(t)
	script := filepath.Join(t.TempDir(), "zoo-plugin-script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello from a shell script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := place(t, map[string]string{"zoo-plugin-noexec": "two"})
	noExecPath := filepath.Join(notExec, "zoo-plugin-noexec")
	// A copy, not a link: chmod must not touch the shared build.
	b, _ := os.ReadFile(noExecPath)
	os.Remove(noExecPath)
	os.WriteFile(noExecPath, b, 0o644)

	tests := []struct {
		name   string
		plugin registry.Plugin
		want   string
	}{
		{"missing file", registry.Plugin{Name: "zoo-plugin-gone", Path: "/nonexistent/zoo-plugin-gone", Source: registry.SourceBundled}, "no such file"},
		{"not executable", pin(registry.Plugin{Name: "zoo-plugin-noexec", Path: noExecPath, Source: registry.SourceBundled}), "is not executable: run `chmod +x"},
		{"not a plugin", pin(registry.Plugin{Name: "zoo-plugin-script", Path: script, Source: registry.SourceBundled}), `not a zoo plugin: it printed "hello from a shell script" instead of the handshake`},
		{"wrong version", pin(registry.Plugin{Name: "zoo-plugin-badversion", Path: filepath.Join(binDir, "zoo-plugin-badversion"), Source: registry.SourceBundled}), "it speaks zoo plugin protocol 99, this zoo speaks 1"},
		{"unpinned outside zoo's dir", registry.Plugin{Name: "zoo-plugin-two", Path: filepath.Join(binDir, "zoo-plugin-two"), Source: registry.SourcePath}, "is not pinned, so zoo does not run it"},
		{"unpinned beside zoo", registry.Plugin{Name: "zoo-plugin-two", Path: filepath.Join(binDir, "zoo-plugin-two"), Source: registry.SourceBundled}, "run `zoo plugins install --in-place " + filepath.Join(binDir, "zoo-plugin-two") + "` to trust it"},
	}
	r, _ := newRegistry(t, t.TempDir())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := r.Launch(context.Background(), tc.plugin)
			if err == nil {
				c.Kill()
				t.Fatal("Launch succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %q, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestChangedChecksumIsRefused(t *testing.T) {
	noOrphans(t)
	src := place(t, map[string]string{"zoo-plugin-two": "two"})
	r, _ := newRegistry(t, t.TempDir())
	p, models, err := r.Install(context.Background(), filepath.Join(src, "zoo-plugin-two"), false, nil)
	if err != nil || len(models) != 2 {
		t.Fatalf("Install: %v, %d models", err, len(models))
	}
	if p.Path != filepath.Join(r.PluginDir(), "zoo-plugin-two") {
		t.Errorf("installed at %s", p.Path)
	}
	// Pinned and unchanged: starts.
	ps, _ := r.Discover()
	c, err := r.Launch(context.Background(), ps[0])
	if err != nil {
		t.Fatalf("pinned plugin refused: %v", err)
	}
	c.Kill()
	f, _ := os.OpenFile(p.Path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0})
	f.Close()
	_, err = r.Launch(context.Background(), ps[0])
	if err == nil || !strings.Contains(err.Error(), "changed since it was pinned") || !strings.Contains(err.Error(), "zoo plugins install --in-place "+p.Path) {
		t.Fatalf("changed plugin: err = %v", err)
	}
	// Re-pinning is the documented remedy.
	if _, _, err := r.Install(context.Background(), p.Path, true, nil); err != nil {
		t.Fatalf("re-pin: %v", err)
	}
	ps, _ = r.Discover()
	c, err = r.Launch(context.Background(), ps[0])
	if err != nil {
		t.Fatalf("re-pinned plugin refused: %v", err)
	}
	c.Kill()
}

func TestInstallRefusesNonPlugins(t *testing.T) {
	noOrphans(t)
	r, _ := newRegistry(t, t.TempDir())
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(binDir, "zoo-plugin-empty"), "describes no models"},
		{filepath.Join(binDir, "zoo-plugin-badversion"), "protocol 99"},
		{"/nonexistent/zoo-plugin-x", "no such file"},
		{filepath.Join(binDir, "zoo-plugin-two") + "x", "no such file"},
	} {
		_, _, err := r.Install(context.Background(), tc.file, false, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Install(%s) = %v, want %q", tc.file, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(r.PluginDir(), filepath.Base(tc.file))); err == nil {
			t.Errorf("Install(%s) left the file installed", tc.file)
		}
	}
}

func TestEmptyPluginIsAProblem(t *testing.T) {
	noOrphans(t)
	r, _ := newRegistry(t, place(t, map[string]string{"zoo-plugin-two": "two", "zoo-plugin-empty": "empty"}))
	models, problems, err := r.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || len(problems) != 1 || !strings.Contains(problems[0].Err.Error(), "zoo-plugin-empty describes no models") {
		t.Fatalf("models %d, problems %v", len(models), problems)
	}
}

func launch(t *testing.T, built string) *sdk.Client { return launchB(t, built) }

func launchB(t testing.TB, built string) *sdk.Client {
	t.Helper()
	r := &registry.Registry{ExeDir: binDir, Home: t.TempDir(), Logger: hclog.NewNullLogger()}
	c, err := r.Launch(context.Background(), pin(registry.Plugin{Name: "zoo-plugin-" + built, Path: filepath.Join(binDir, "zoo-plugin-"+built), Source: registry.SourceBundled}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

func TestCrashMidCall(t *testing.T) {
	noOrphans(t)
	c := launch(t, "crash")
	ctx := context.Background()
	s, _, err := c.Open(ctx, sdk.OpenRequest{Model: "Crashy", Mode: "train"})
	if err != nil {
		t.Fatal(err)
	}
	var steps int
	var runErr error
	for e, err := range s.Run(ctx, sdk.RunRequest{Phase: "train"}) {
		if err != nil {
			runErr = err
			break
		}
		if e.Step != nil {
			steps++
		}
	}
	var ee *sdk.ExitError
	if !errors.As(runErr, &ee) {
		t.Fatalf("Run error = %v (%T), want *sdk.ExitError", runErr, runErr)
	}
	if want := "plugin zoo-plugin-crash exited: crashy: out of cheese at step 1 (during Run; --log-level debug shows its last stderr lines)"; runErr.Error() != want {
		t.Errorf("error = %q, want %q", runErr, want)
	}
	if steps > 1 {
		t.Errorf("saw %d steps before the crash, want at most 1", steps)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	noOrphans(t)
	c := launch(t, "two")
	ctx := context.Background()
	cfg := sdk.Config{"TRAIN": {"steps": 3.0, "batch_size": 2.0, "learning_rate": 0.25, "nan_at": -1.0}}
	s, res, err := c.Open(ctx, sdk.OpenRequest{Model: "Alpha", Mode: "train", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 1 || res.Notes[0] != "opened Alpha in train mode" {
		t.Errorf("notes = %v", res.Notes)
	}
	var losses []float64
	for e, err := range s.Run(ctx, sdk.RunRequest{Phase: "train"}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Step != nil {
			losses = append(losses, e.Step.Metrics["loss"])
		}
	}
	// w: 0 -> 1.5 -> 2.25 -> 2.625; loss is measured before each update.
	want := []float64{9, 2.25, 0.5625}
	if fmt.Sprint(losses) != fmt.Sprint(want) {
		t.Errorf("losses = %v, want %v", losses, want)
	}
	dir := t.TempDir()
	if err := s.Save(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if wt, err := weights.ReadFile(filepath.Join(dir, "w")); err != nil {
		t.Errorf("saved w: %v", err)
	} else if v, err := wt.Float32s(); err != nil || fmt.Sprint(v) != "[2.625]" {
		t.Errorf("saved w = %v %v, want [2.625]", v, err)
	}
	if _, err := s.Load(ctx, t.TempDir(), sdk.LoadResume); sdk.CodeOf(err) != sdk.CodeNotFound {
		t.Errorf("Load of an empty dir: %v (code %d), want CodeNotFound", err, sdk.CodeOf(err))
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, err := range s.Run(ctx, sdk.RunRequest{Phase: "train"}) {
		if sdk.CodeOf(err) != sdk.CodeNotFound {
			t.Errorf("Run after Close: %v, want CodeNotFound", err)
		}
	}
}

func TestLargeTensorCrosses(t *testing.T) {
	noOrphans(t)
	c := launch(t, "two")
	ctx := context.Background()
	s, _, err := c.Open(ctx, sdk.OpenRequest{Model: "Alpha", Mode: "infer"})
	if err != nil {
		t.Fatal(err)
	}
	// One 8x3x224x224 clip is 4.8 MB, over gRPC's default 4 MB limit.
	in := sdk.Tensor{Shape: []int64{8, 3, 224, 224}, Data: make([]float32, 8*3*224*224)}
	for i := range in.Data {
		in.Data[i] = 0.5
	}
	out, err := s.Infer(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Data[0] != float32(len(in.Data))/2 || out.Data[1] != float32(len(in.Data)) {
		t.Errorf("Infer = %v", out.Data)
	}
	bad := sdk.Tensor{Shape: []int64{2, 2}, Data: []float32{1}}
	if _, err := s.Infer(ctx, bad); sdk.CodeOf(err) != sdk.CodeInvalidArgument {
		t.Errorf("malformed tensor: %v, want CodeInvalidArgument", err)
	}
}

// TestHungPluginTimesOut: a plugin that never answers Describe is a
// problem naming it and the timeout, after the timeout, and the other
// plugins still count.
func TestHungPluginTimesOut(t *testing.T) {
	noOrphans(t)
	r, _ := newRegistry(t, place(t, map[string]string{"zoo-plugin-two": "two", "zoo-plugin-hang": "hang"}))
	r.CallTimeout = time.Second
	start := time.Now()
	models, problems, err := r.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Models took %v with a 1s call timeout", took)
	}
	var te *sdk.TimeoutError
	if len(models) != 2 || len(problems) != 1 || !errors.As(problems[0].Err, &te) || te.Call != "Describe" ||
		!strings.Contains(problems[0].Err.Error(), "zoo-plugin-hang did not answer Describe within 1s") {
		t.Fatalf("models %d, problems %v", len(models), problems)
	}
	if !errors.Is(problems[0].Err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap context.DeadlineExceeded", problems[0].Err)
	}
}

// TestOlderMinorStillWorks: a plugin reporting protocol minor 0 (before
// default jobs and session labels) is listed, its minor recorded, and a
// session on it runs.
func TestOlderMinorStillWorks(t *testing.T) {
	noOrphans(t)
	if sdk.ProtocolMinor < 1 {
		t.Fatalf("sdk.ProtocolMinor %d: this test needs a host newer than the plugin", sdk.ProtocolMinor)
	}
	r, logs := newRegistry(t, place(t, map[string]string{"zoo-plugin-oldminor": "oldminor"}))
	models, problems, err := r.Models(context.Background())
	if err != nil || len(problems) > 0 || len(models) != 1 {
		t.Fatalf("Models: %v %v %v", models, problems, err)
	}
	m := models[0]
	if m.Minor != 0 || m.Info.Name != "Oldie" || m.Info.DefaultConfig != nil {
		t.Fatalf("model %+v, minor %d", m.Info, m.Minor)
	}
	if !strings.Contains(logs.String(), "speaks protocol 1.0, older than zoo's 1.") || !strings.Contains(logs.String(), "OpenResponse.labels") {
		t.Errorf("no note on the older minor:\n%s", logs)
	}
	c, err := r.Launch(context.Background(), m.Plugin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	sess, res, err := c.Open(context.Background(), sdk.OpenRequest{Model: "Oldie", Mode: sdk.ModeInfer, Config: sdk.Config{"INFER": {"samples": 3.0}}})
	if err != nil || len(res.Labels) != 0 {
		t.Fatalf("Open: %v, labels %v", err, res.Labels)
	}
	n := 0
	for e, err := range sess.Run(context.Background(), sdk.RunRequest{Phase: sdk.PhaseInfer}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Prediction != nil {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d predictions, want 3", n)
	}
}
