package main_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/weights"
)

// alphaArchive builds alpha_w.tar.gz in Paddle's layout: alpha_w/w, a
// parameter file holding the one FP32 value w.
func alphaArchive(t *testing.T, w float32) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "w")
	if err := weights.WriteFile(p, weights.NewFloat32("w", []int64{1}, []float32{w})); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range []*tar.Header{
		{Name: "alpha_w/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "alpha_w/w", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// weightsServer serves archive as /alpha_w.tar.gz (404 for anything else)
// and counts the requests for it.
func weightsServer(t *testing.T, archive []byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/alpha_w.tar.gz" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		http.ServeContent(w, r, "alpha_w.tar.gz", time.Time{}, bytes.NewReader(archive))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// storeEnv points zoo at the weights store dir and the mirror, online.
func storeEnv(dir, mirror string) []string {
	return []string{"ZOO_WEIGHTS_DIR=" + dir, "ZOO_WEIGHTS_MIRROR=" + mirror, "ZOO_OFFLINE=0"}
}

type weightsRow struct {
	Name     string `json:"name"`
	Model    string `json:"model"`
	Use      string `json:"use"`
	URL      string `json:"url"`
	Present  bool   `json:"present"`
	Size     int64  `json:"size"`
	Verified bool   `json:"verified"`
	Problem  string `json:"problem"`
	Path     string `json:"path"`
}

func listJSON(t *testing.T, env []string) weightsRow {
	t.Helper()
	r := zoo(t, env, "weights", "list", "--json")
	var rows []weightsRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 {
		t.Fatalf("zoo weights list --json: code %d, %v, %+v\n%s\n%s", r.code, err, rows, r.stdout, r.stderr)
	}
	// The TSM plugin's sets are listed too; the tests use Alpha's.
	for _, row := range rows {
		if row.Name == "alpha_w" {
			return row
		}
	}
	t.Fatalf("zoo weights list --json has no alpha_w: %+v", rows)
	return rows[0]
}

func TestWeightsLifecycle(t *testing.T) {
	store := t.TempDir()
	srv, hits := weightsServer(t, alphaArchive(t, 3))
	env := storeEnv(store, srv.URL)
	dir := filepath.Join(store, "alpha_w")

	if row := listJSON(t, env); row.Present || row.Name != "alpha_w" || row.Model != "Alpha" || row.Use != "weights" ||
		row.URL != srv.URL+"/alpha_w.tar.gz" || row.Path != dir {
		t.Errorf("before fetch: %+v", row)
	}

	// A model's name, in any case, fetches all its sets.
	r := zoo(t, env, "weights", "fetch", "ALPHA")
	if r.code != 0 {
		t.Fatalf("fetch: %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "alpha_w") || !strings.Contains(r.stdout, dir) {
		t.Errorf("fetch stdout %q lacks the set and %s", r.stdout, dir)
	}
	if !strings.Contains(r.stderr, "alpha_w: downloaded") {
		t.Errorf("fetch shows no progress:\n%s", r.stderr)
	}
	got, err := weights.ReadFile(filepath.Join(dir, "w"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Float32s(); len(v) != 1 || v[0] != 3 {
		t.Errorf("installed w = %v", v)
	}
	if _, err := os.Stat(filepath.Join(store, weights.LockFileName)); err != nil {
		t.Errorf("no lock file: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(store, ".alpha_w*part")); len(leftovers) > 0 {
		t.Errorf("partial download left behind: %v", leftovers)
	}

	// Present: no network, and --quiet draws nothing.
	before := hits.Load()
	r = zoo(t, env, "weights", "fetch", "--quiet", "alpha_w")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, dir) {
		t.Errorf("second fetch: code %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if hits.Load() != before {
		t.Errorf("an installed set was downloaded again")
	}

	fi, err := os.Stat(filepath.Join(dir, "w"))
	if err != nil {
		t.Fatal(err)
	}
	if row := listJSON(t, env); !row.Present || !row.Verified || row.Size != fi.Size() || row.Problem != "" {
		t.Errorf("after fetch: %+v, want present, verified, size %d", row, fi.Size())
	}
	r = zoo(t, env, "weights", "list")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) < 2 ||
		strings.Join(strings.Fields(lines[0]), " ") != "NAME MODEL USE PRESENT SIZE VERIFIED PATH" ||
		strings.Join(strings.Fields(lines[1]), " ") != "alpha_w Alpha weights yes "+iostreams.HumanBytes(fi.Size())+" yes "+dir {
		t.Errorf("weights list:\n%s", r.stdout)
	}

	r = zoo(t, env, "weights", "path", "Alpha_W")
	if r.code != 0 || r.stdout != dir+"\n" {
		t.Errorf("path: code %d, stdout %q, want %q", r.code, r.stdout, dir+"\n")
	}
	r = zoo(t, env, "weights", "verify")
	if r.code != 0 || !strings.Contains(r.stdout, "alpha_w") || !strings.Contains(r.stdout, "ok") {
		t.Errorf("verify: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A file changed after install: still a valid parameter file, but not
	// the one zoo installed.
	if err := weights.WriteFile(filepath.Join(dir, "w"), weights.NewFloat32("w", []int64{1}, []float32{4})); err != nil {
		t.Fatal(err)
	}
	r = zoo(t, env, "weights", "verify", "alpha_w")
	oneLineError(t, r, 1, "changed since they were installed")
	if !strings.Contains(r.stderr, "zoo weights rm alpha_w && zoo weights fetch alpha_w") {
		t.Errorf("verify failure names no remedy:\n%s", r.stderr)
	}
	if row := listJSON(t, env); !row.Present || row.Verified || row.Problem == "" {
		t.Errorf("after tampering: %+v, want present, not verified, a problem", row)
	}
	r = zoo(t, env, "weights", "list")
	if !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stderr, "zoo weights verify alpha_w") {
		t.Errorf("list after tampering:\n%s\n%s", r.stdout, r.stderr)
	}
	// A file that is not a parameter file at all.
	os.WriteFile(filepath.Join(dir, "w"), []byte("3.0"), 0o644)
	oneLineError(t, zoo(t, env, "weights", "verify"), 1, "alpha_w")

	r = zoo(t, env, "weights", "rm", "alpha_w")
	if r.code != 0 {
		t.Fatalf("rm: %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("rm left %s: %v", dir, err)
	}
	oneLineError(t, zoo(t, env, "weights", "path", "alpha_w"), 1, "weight set alpha_w is not installed in "+dir+": run zoo weights fetch alpha_w")
	oneLineError(t, zoo(t, env, "weights", "rm", "alpha_w"), 1, "not installed")

	// Fetch again: the archive's hash recorded at the first fetch matches.
	r = zoo(t, env, "weights", "fetch", "alpha")
	if r.code != 0 || listJSON(t, env).Verified != true {
		t.Errorf("fetch after rm: %d\n%s", r.code, r.stderr)
	}
}

func TestWeightsImportOffline(t *testing.T) {
	store := t.TempDir()
	archive := filepath.Join(t.TempDir(), "alpha_w.tar.gz")
	if err := os.WriteFile(archive, alphaArchive(t, 2.5), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"ZOO_WEIGHTS_DIR=" + store, "ZOO_OFFLINE=1"}
	dir := filepath.Join(store, "alpha_w")

	r := zoo(t, env, "weights", "fetch", "alpha_w")
	oneLineError(t, r, 1, "fetch \"alpha_w\" into "+dir+": offline")
	for _, want := range []string{"http://127.0.0.1:1/alpha_w.tar.gz", "zoo weights import alpha_w FILE.tar.gz"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("offline error lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a failed fetch left %s: %v", dir, err)
	}

	r = zoo(t, env, "weights", "import", "alpha_w", archive)
	if r.code != 0 || !strings.Contains(r.stdout, dir) {
		t.Fatalf("import: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	got, err := weights.ReadFile(filepath.Join(dir, "w"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Float32s(); len(v) != 1 || v[0] != 2.5 {
		t.Errorf("imported w = %v", v)
	}
	if row := listJSON(t, env); !row.Present || !row.Verified {
		t.Errorf("after import: %+v", row)
	}
	// Offline, an installed set resolves without the network.
	if r := zoo(t, env, "weights", "fetch", "alpha"); r.code != 0 {
		t.Errorf("offline fetch of an installed set: %d\n%s", r.code, r.stderr)
	}

	// Another archive for the same set must have the recorded hash.
	other := filepath.Join(t.TempDir(), "other.tar.gz")
	os.WriteFile(other, alphaArchive(t, 7), 0o644)
	oneLineError(t, zoo(t, env, "weights", "import", "alpha_w", other), 1, "checksum mismatch")
	if got, err := weights.ReadFile(filepath.Join(dir, "w")); err != nil {
		t.Errorf("a refused import broke the installed set: %v", err)
	} else if v, _ := got.Float32s(); v[0] != 2.5 {
		t.Errorf("a refused import changed w to %v", v)
	}

	notGzip := filepath.Join(t.TempDir(), "bad.tar.gz")
	os.WriteFile(notGzip, []byte("not a gzip file"), 0o644)
	oneLineError(t, zoo(t, []string{"ZOO_WEIGHTS_DIR=" + t.TempDir()}, "weights", "import", "alpha_w", notGzip), 1, "alpha_w")
	oneLineError(t, zoo(t, env, "weights", "import", "alpha_w", "/nonexistent.tar.gz"), 2, "archive /nonexistent.tar.gz: no such file")
	oneLineError(t, zoo(t, env, "weights", "import", "alpha_w"), 2, "import needs a weight set and an archive")
}

func TestWeightsFetchErrors(t *testing.T) {
	srv, _ := weightsServer(t, alphaArchive(t, 3))
	store := t.TempDir()
	// The mirror's directory holds no alpha_w.tar.gz: 404, not retried.
	env := storeEnv(store, srv.URL+"/missing")
	start := time.Now()
	r := zoo(t, env, "weights", "fetch", "alpha_w")
	oneLineError(t, r, 1, "404")
	for _, want := range []string{srv.URL + "/missing/alpha_w.tar.gz", filepath.Join(store, "alpha_w"), "zoo weights import alpha_w"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("404 error lacks %q:\n%s", want, r.stderr)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 404 took %v: it was retried", d)
	}
	if ents, _ := os.ReadDir(store); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".lock") {
				names = append(names, e.Name())
			}
		}
		if len(names) > 0 {
			t.Errorf("a failed fetch left %v in the store", names)
		}
	}

	// --mirror overrides $ZOO_WEIGHTS_MIRROR.
	r = zoo(t, env, "weights", "fetch", "--quiet", "--mirror", srv.URL, "alpha_w")
	if r.code != 0 {
		t.Errorf("fetch --mirror: %d\n%s", r.code, r.stderr)
	}

	r = zoo(t, env, "weights", "fetch", "alpha_w", "gamma")
	oneLineError(t, r, 1, `unknown weight set or model "gamma": known weight sets are alpha_w, ResNet50_pretrained, tsm_kinetics (of models Alpha, ResNet, TSM)`)
	oneLineError(t, zoo(t, env, "weights", "fetch", "beta"), 1, `unknown weight set or model "beta"`)
	oneLineError(t, zoo(t, env, "weights", "path"), 2, "path needs one weight set")
	oneLineError(t, zoo(t, env, "weights", "rm", "a", "b"), 2, "rm needs one weight set")
}

// zoo run with a config and no --weights resolves the model's published
// set through the store, fetching it once.
func TestRunFetchesWeights(t *testing.T) {
	srv, hits := weightsServer(t, alphaArchive(t, 3))
	store := t.TempDir()
	env := storeEnv(store, srv.URL)
	cfg := filepath.Join(t.TempDir(), "cfg.txt")
	os.WriteFile(cfg, []byte("[TEST]\nvideos = 4\n"), 0o644)
	dir := filepath.Join(store, "alpha_w")
	for i := 0; i < 2; i++ {
		save := t.TempDir()
		r := zoo(t, env, "run", "alpha", "test", "--config", cfg, "--save_dir", save)
		if r.code != 0 {
			t.Fatalf("run %d: %d\n%s\n%s", i, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "loaded w=3 from "+dir) {
			t.Errorf("run %d did not test the fetched weights:\n%s", i, r.stderr)
		}
		fetching := strings.Contains(r.stderr, "fetching weights alpha_w for Alpha from "+srv.URL+"/alpha_w.tar.gz into "+dir)
		if fetching != (i == 0) {
			t.Errorf("run %d: fetching message %v, want %v:\n%s", i, fetching, i == 0, r.stderr)
		}
		var tr struct{ Videos int }
		readJSON(t, filepath.Join(save, "Alpha_test_result.json"), &tr)
		if tr.Videos != 4 {
			t.Errorf("run %d: tested %d videos, want 4", i, tr.Videos)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("the archive was requested %d times, want once", hits.Load())
	}
	// --weights wins over the store; train with a config does not need
	// the weights set (Alpha publishes no pretrain set).
	r := zoo(t, env, "run", "alpha", "infer", "--config", cfg, "--weights", dir, "--save_dir", t.TempDir())
	if r.code != 0 || strings.Contains(r.stderr, "fetching") {
		t.Errorf("infer --weights: %d\n%s", r.code, r.stderr)
	}
	if r := zoo(t, env, "run", "alpha", "train", "--config", cfg, "--save_dir", t.TempDir()); r.code != 0 {
		t.Errorf("train --config: %d\n%s", r.code, r.stderr)
	}

	// Offline with an empty store: the error says every way out.
	empty := t.TempDir()
	r = zoo(t, []string{"ZOO_WEIGHTS_DIR=" + empty, "ZOO_OFFLINE=1"}, "run", "alpha", "test", "--config", cfg)
	oneLineError(t, r, 1, "download http://127.0.0.1:1/alpha_w.tar.gz elsewhere and run: zoo weights import alpha_w FILE.tar.gz; or pass --weights DIR")
	if !strings.Contains(r.stderr, filepath.Join(empty, "alpha_w")) {
		t.Errorf("offline run error names no target directory:\n%s", r.stderr)
	}
}

// Ctrl-C in the middle of a download keeps what arrived; the next fetch
// asks the server for the rest only.
func TestWeightsFetchInterruptResume(t *testing.T) {
	archive := alphaArchive(t, 3)
	half := len(archive) / 2
	sent := make(chan struct{})
	var (
		mu     sync.Mutex
		ranges []string
	)
	var stall atomic.Bool
	stall.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall.Load() {
			w.Header().Set("Content-Length", strconv.Itoa(len(archive)))
			w.Write(archive[:half])
			w.(http.Flusher).Flush()
			close(sent)
			<-r.Context().Done()
			return
		}
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		http.ServeContent(w, r, "alpha_w.tar.gz", time.Time{}, bytes.NewReader(archive))
	}))
	defer srv.Close()
	store := t.TempDir()
	env := storeEnv(store, srv.URL)

	cmd := exec.Command(filepath.Join(binDir, "zoo"), "weights", "fetch", "alpha_w")
	cmd.Env = append(append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH="), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("zoo never asked for the archive:\n%s", errb.String())
	}
	part := filepath.Join(store, ".alpha_w.tar.gz.part")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(part); err == nil && fi.Size() == int64(half) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no partial download of %d bytes in %s", half, part)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted fetch: %v, want exit code 130\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "run zoo weights fetch alpha_w again to resume") {
		t.Errorf("interrupt message:\n%s", errb.String())
	}
	if fi, err := os.Stat(part); err != nil || fi.Size() != int64(half) {
		t.Fatalf("partial download after the interrupt: %v", err)
	}

	stall.Store(false)
	r := zoo(t, env, "weights", "fetch", "alpha_w")
	if r.code != 0 {
		t.Fatalf("resumed fetch: %d\n%s", r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := fmt.Sprintf("bytes=%d-", half); len(ranges) != 1 || ranges[0] != want {
		t.Errorf("resumed fetch asked for %q, want one request for %q", ranges, want)
	}
	if row := listJSON(t, env); !row.Present || !row.Verified {
		t.Errorf("after the resumed fetch: %+v", row)
	}
}

// A set a Paddle user downloaded before zoo (no lock file entry) is found
// and used; verify checks its files but has no digest to compare.
func TestWeightsInstalledOutsideZoo(t *testing.T) {
	store := t.TempDir()
	dir := filepath.Join(store, "alpha_w")
	os.Mkdir(dir, 0o755)
	if err := weights.WriteFile(filepath.Join(dir, "w"), weights.NewFloat32("w", []int64{1}, []float32{1.5})); err != nil {
		t.Fatal(err)
	}
	env := []string{"ZOO_WEIGHTS_DIR=" + store}
	r := zoo(t, env, "weights", "list")
	if fields := strings.Fields(strings.Split(r.stdout, "\n")[1]); len(fields) != 8 || fields[3] != "yes" || fields[6] != "unknown" {
		t.Errorf("list of a set zoo did not install:\n%s", r.stdout)
	}
	r = zoo(t, env, "weights", "verify", "alpha")
	if r.code != 0 || !strings.Contains(r.stdout, "no digest recorded") {
		t.Errorf("verify: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	cfg := filepath.Join(t.TempDir(), "cfg.txt")
	os.WriteFile(cfg, []byte("[TEST]\nvideos = 1\n"), 0o644)
	r = zoo(t, env, "run", "alpha", "infer", "--config", cfg, "--save_dir", t.TempDir())
	if r.code != 0 || !strings.Contains(r.stderr, "loaded w=1.5 from "+dir) {
		t.Errorf("run with a set installed outside zoo: %d\n%s", r.code, r.stderr)
	}
	// A directory missing the variable the model needs fails verification.
	os.Remove(filepath.Join(dir, "w"))
	oneLineError(t, zoo(t, env, "weights", "verify", "alpha_w"), 1, dir+": 1 needed variables missing: w")
}
