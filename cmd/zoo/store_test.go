package main_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/weights"
)

// tarGz packs files (name -> content, directories ending in "/") in the
// given order.
func tarGz(t *testing.T, names []string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// paramFile returns the bytes of a parameter file holding t.
func paramFile(t *testing.T, tensor *weights.Tensor) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := weights.WriteFile(p, tensor); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storeSnapshot lists every path under root with its type, size and
// content hash, leaving out the empty flock files (.NAME.lock) zoo keeps on
// purpose: deleting one while another process waits on it would let two
// processes hold the lock.
func storeSnapshot(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == d.Name() && strings.HasPrefix(rel, ".") && strings.HasSuffix(rel, ".lock") {
			return nil
		}
		info, _ := d.Info()
		b, _ := os.ReadFile(p)
		out = append(out, fmt.Sprintf("%s %v %d %x", rel, d.Type(), info.Size(), b[:min(len(b), 64)]))
		return nil
	})
	return out
}

// TestWeightsDownloadCap: with ZOO_WEIGHTS_MAX_BYTES below the archive's
// announced size, fetch refuses it, downloads nothing and leaves no .part.
func TestWeightsDownloadCap(t *testing.T) {
	arch := alphaArchive(t, 3)
	srv, _ := weightsServer(t, arch)
	store := t.TempDir()
	env := append(storeEnv(store, srv.URL), "ZOO_WEIGHTS_MAX_BYTES=100")
	r := zoo(t, env, "weights", "fetch", "alpha_w")
	oneLineError(t, r, 1, fmt.Sprintf("the archive is %d bytes, above the limit of 100 (raise it with ZOO_WEIGHTS_MAX_BYTES)", len(arch)))
	if _, err := os.Stat(filepath.Join(store, ".alpha_w.tar.gz.part")); !os.IsNotExist(err) {
		t.Errorf("a refused download left its .part: %v", err)
	}
	oneLineError(t, zoo(t, append(storeEnv(store, srv.URL), "ZOO_WEIGHTS_MAX_BYTES=big"), "weights", "fetch", "alpha_w"), 1, `ZOO_WEIGHTS_MAX_BYTES="big"`)
	if r := zoo(t, append(storeEnv(store, srv.URL), fmt.Sprintf("ZOO_WEIGHTS_MAX_BYTES=%d", len(arch))), "weights", "fetch", "alpha_w"); r.code != 0 {
		t.Errorf("fetch with the cap at the archive's size: %d\n%s", r.code, r.stderr)
	}
}

// TestWeightsVerifySymlinks: a member of an installed set that is a
// symlink out of the set (to /etc/passwd) fails verify and list.
func TestWeightsVerifySymlinks(t *testing.T) {
	store := t.TempDir()
	archive := filepath.Join(t.TempDir(), "alpha_w.tar.gz")
	os.WriteFile(archive, alphaArchive(t, 2), 0o644)
	env := []string{"ZOO_WEIGHTS_DIR=" + store}
	if r := zoo(t, env, "weights", "import", "alpha_w", archive); r.code != 0 {
		t.Fatalf("import: %d\n%s", r.code, r.stderr)
	}
	link := filepath.Join(store, "alpha_w", "passwd")
	if err := os.Symlink("/etc/passwd", link); err != nil {
		t.Fatal(err)
	}
	oneLineError(t, zoo(t, env, "weights", "verify", "alpha_w"), 1, `passwd: symlink to "/etc/passwd" points outside the weight set`)
	if row := listJSON(t, env); row.Verified || !strings.Contains(row.Problem, "points outside") {
		t.Errorf("list with a link to /etc/passwd in the set: %+v", row)
	}
	os.Remove(link)
	if r := zoo(t, env, "weights", "verify", "alpha_w"); r.code != 0 {
		t.Errorf("verify without the link: %d\n%s", r.code, r.stderr)
	}
}

// TestWeightsSymlinkedDir: --weights DIR whose files are symlinks into an
// object store elsewhere (DVC, git-annex, Hugging Face caches) loads.
func TestWeightsSymlinkedDir(t *testing.T) {
	save := t.TempDir()
	r := zoo(t, nil, "run", "TSM", "train", "--save_dir", save, "--set", "TRAIN.epoch=1",
		"--set", "SYNTHETIC.train_videos=16", "--set", "SYNTHETIC.valid_videos=16")
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	ckpt := filepath.Join(save, "TSM_epoch0")
	ents, err := os.ReadDir(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	objects, links := t.TempDir(), t.TempDir()
	for i, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || e.Name() == "zoo_state.json" {
			continue
		}
		obj := filepath.Join(objects, fmt.Sprintf("%04d", i))
		if err := os.Rename(filepath.Join(ckpt, e.Name()), obj); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(obj, filepath.Join(links, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	r = zoo(t, nil, "run", "TSM", "test", "--weights", links, "--save_dir", t.TempDir(), "--set", "SYNTHETIC.test_videos=16")
	if r.code != 0 || !strings.Contains(r.stderr, "weights: ") || !strings.Contains(r.stderr, "from "+links) {
		t.Errorf("test with --weights of symlinks: %d\n%s", r.code, r.stderr)
	}
}

// TestWeightsCheckedWhole: a checkpoint of another network (a ResNet-18)
// that holds every name the old check asked for is refused as
// tsm_kinetics, by shape; installed by hand, it fails verify and list.
func TestWeightsCheckedWhole(t *testing.T) {
	names := []string{"tsm_kinetics/"}
	files := map[string][]byte{}
	add := func(name string, dims ...int64) {
		size := int64(1)
		for _, d := range dims {
			size *= d
		}
		names = append(names, "tsm_kinetics/"+name)
		files["tsm_kinetics/"+name] = paramFile(t, weights.NewFloat32(name, dims, make([]float32, size)))
	}
	// The stem and head of a ResNet-18 (512 features), plus the one name of
	// the old check that ResNet-18 lacks.
	add("conv1_weights", 64, 3, 7, 7)
	for _, s := range []string{"scale", "offset", "mean", "variance"} {
		add("bn_conv1_"+s, 64)
	}
	add("res5b_branch2b_weights", 512, 512, 3, 3)
	add("res5c_branch2c_weights", 512, 512, 1, 1)
	add("fc_0.w_0", 512, 400)
	add("fc_0.b_0", 400)
	archive := filepath.Join(t.TempDir(), "tsm_kinetics.tar.gz")
	if err := os.WriteFile(archive, tarGz(t, names, files), 0o644); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	env := []string{"ZOO_WEIGHTS_DIR=" + store}
	r := zoo(t, env, "weights", "import", "tsm_kinetics", archive)
	oneLineError(t, r, 1, "fc_0.w_0 in "+archive+": shape [512 400], want [2048 400]")
	if !strings.Contains(r.stderr, "needed variables missing") {
		t.Errorf("import names no missing variables:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(store, "tsm_kinetics")); !os.IsNotExist(err) {
		t.Errorf("a refused archive was installed: %v", err)
	}

	// The same files copied in by hand, as a Paddle user would.
	dir := filepath.Join(store, "tsm_kinetics")
	os.Mkdir(dir, 0o755)
	for n, b := range files {
		os.WriteFile(filepath.Join(store, n), b, 0o644)
	}
	oneLineError(t, zoo(t, env, "weights", "verify", "tsm_kinetics"), 1, "fc_0.w_0 in "+dir+": shape [512 400], want [2048 400]")
	r = zoo(t, env, "weights", "list", "--json")
	var rows []weightsRow
	json.Unmarshal([]byte(r.stdout), &rows)
	for _, row := range rows {
		if row.Name == "tsm_kinetics" && (row.Verified || !strings.Contains(row.Problem, "want [2048 400]")) {
			t.Errorf("list: %+v, want not verified, the shape named", row)
		}
	}
	if !strings.Contains(r.stdout, `"tsm_kinetics"`) {
		t.Errorf("list --json has no tsm_kinetics:\n%s", r.stdout)
	}
}
