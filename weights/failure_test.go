package weights

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// fullDisk fails every write as a full disk does.
type fullDisk struct{ name string }

func (d fullDisk) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: d.name, Err: syscall.ENOSPC}
}

// failWrites makes writes to files whose base name contains match fail with
// ENOSPC for the rest of the test. It swaps a package variable: tests that
// use it must not be parallel.
func failWrites(t *testing.T, match string) {
	old := fileWriter
	fileWriter = func(f *os.File) io.Writer {
		if strings.Contains(filepath.Base(f.Name()), match) {
			return fullDisk{f.Name()}
		}
		return f
	}
	t.Cleanup(func() { fileWriter = old })
}

// snapshot lists every path under root with its size and link target, but
// the set locks (.NAME.lock, empty flock files kept on purpose: removing one
// while another process waits on it would let two processes hold it).
func snapshot(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".lock") && rel == d.Name() {
			return nil
		}
		info, _ := d.Info()
		ln, _ := os.Readlink(p)
		b, _ := os.ReadFile(p)
		out = append(out, fmt.Sprintf("%s %v %d %s %s", rel, d.Type(), info.Size(), ln, hexSHA(b)))
		return nil
	})
	return out
}

func TestDiskFullChangesNothing(t *testing.T) {
	arch := stemArchive(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		fail     string // base name of the file whose writes fail
		fetch    bool
		previous bool   // a set is installed before
		wantFile string // the message names this
	}{
		{"import, unpacking", "conv1_weights", false, false, "member \"tsm_test/conv1_weights\""},
		{"import, lock file", ".zoo-weights.lock.tmp-", false, false, LockFileName},
		{"import replacing, lock file", ".zoo-weights.lock.tmp-", false, true, LockFileName},
		{"fetch, download", ".tar.gz.part", true, false, ".tsm_test.tar.gz.part"},
		{"fetch, unpacking", "res2a_branch2a_weights", true, false, "member \"tsm_test/res2a_branch2a_weights\""},
		{"fetch, lock file", ".zoo-weights.lock.tmp-", true, false, LockFileName},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, arch, nil)
			st, _ := testStore(t)
			set := srv.set()
			file := filepath.Join(t.TempDir(), "tsm_test.tar.gz")
			if err := os.WriteFile(file, arch, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(st.Root, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.previous {
				if _, err := st.Import(ctx, set, file); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, st.Root)
			failWrites(t, tc.fail)
			var err error
			if tc.fetch {
				_, err = st.Fetch(ctx, set)
			} else {
				_, err = st.Import(ctx, set, file)
			}
			if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("error %v, want ErrNoSpace wrapping ENOSPC", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, tc.wantFile) || strings.Contains(msg, "corrupt") {
				t.Errorf("message %q: want \"no space left on device\" naming %s", msg, tc.wantFile)
			}
			if tc.fetch && tc.fail == ".tar.gz.part" && !strings.Contains(msg, "removed the partial download") {
				t.Errorf("message %q does not say the partial download was removed", msg)
			}
			if after := snapshot(t, st.Root); !slices.Equal(before, after) {
				t.Errorf("the store changed:\nbefore %q\nafter  %q", before, after)
			}
			if st.Present(set) != tc.previous {
				t.Errorf("Present = %v, want %v", st.Present(set), tc.previous)
			}
			if tc.previous {
				if err := st.Verify(ctx, set); err != nil {
					t.Errorf("the set installed before no longer verifies: %v", err)
				}
			}
		})
	}
}

func TestFetchKeepsPartForNetworkErrors(t *testing.T) {
	arch := stemArchive(t)
	srv := newServer(t, arch, func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
		dropAfter(w, b, len(b)/2)
		return true
	})
	st, _ := testStore(t)
	st.Attempts = 1
	_, err := st.Fetch(context.Background(), srv.set())
	part := filepath.Join(st.Root, ".tsm_test.tar.gz.part")
	fi, serr := os.Stat(part)
	if err == nil || serr != nil || fi.Size() != int64(len(arch)/2) {
		t.Fatalf("Fetch = %v; part %v, want the half kept", err, serr)
	}
	if want := fmt.Sprintf("kept the partial download %s (%d bytes)", part, len(arch)/2); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
}

func TestDownloadSizeCap(t *testing.T) {
	arch := stemArchive(t)
	cases := []struct {
		name    string
		max     int64
		handler handlerFunc
		want    string
	}{
		{"no length, above the maximum", 1000, func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			w.WriteHeader(200) // no Content-Length: chunked
			for i := 0; i < len(b); i += 512 {
				w.Write(b[i:min(i+512, len(b))])
				w.(http.Flusher).Flush()
			}
			return true
		}, "larger than the limit of 1000 bytes (the server did not say its size; raise the limit with ZOO_WEIGHTS_MAX_BYTES)"},
		{"announced above the maximum", 1000, nil, fmt.Sprintf("the archive is %d bytes, above the limit of 1000", len(arch))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, arch, tc.handler)
			st, _ := testStore(t)
			st.MaxDownload = tc.max
			_, err := st.Fetch(context.Background(), srv.set())
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Fetch = %v, want ErrTooLarge saying %q", err, tc.want)
			}
			if n := srv.reqs.Load(); n != 1 {
				t.Errorf("%d requests: an archive above the cap is not retried", n)
			}
			if l := leftovers(t, st.Root); len(l) > 0 {
				t.Errorf("left in the store: %v", l)
			}
			// Within the cap it installs.
			st.MaxDownload = int64(len(arch))
			if _, err := st.Fetch(context.Background(), srv.set()); tc.handler == nil && err != nil {
				t.Errorf("Fetch with the cap at the archive's size: %v", err)
			}
		})
	}
	t.Setenv(MaxBytesEnv, "lots")
	st := FromEnv()
	st.Root = t.TempDir()
	if _, err := st.Fetch(context.Background(), Set{Name: "x", URL: "http://127.0.0.1:1/x.tar.gz"}); err == nil || !strings.Contains(err.Error(), `ZOO_WEIGHTS_MAX_BYTES="lots"`) {
		t.Errorf("bad %s: %v", MaxBytesEnv, err)
	}
	t.Setenv(MaxBytesEnv, "123")
	if st := FromEnv(); st.MaxDownload != 123 {
		t.Errorf("MaxDownload %d, want 123", st.MaxDownload)
	}
}

func TestVerifyChecksSymlinks(t *testing.T) {
	ctx := context.Background()
	st, _ := testStore(t)
	set := Set{Name: "tsm_test", URL: "http://127.0.0.1:1/tsm_test.tar.gz", Required: required}
	file := filepath.Join(t.TempDir(), "a.tar.gz")
	ms := append(stemMembers(t, "tsm_test"), member{name: "tsm_test/alias", typ: tar.TypeSymlink, linkname: "conv1_weights"})
	if err := os.WriteFile(file, gz(tarBytes(t, ms)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(ctx, set, file); err != nil {
		t.Fatal(err)
	}
	if err := st.Verify(ctx, set); err != nil {
		t.Fatalf("a link inside the set: %v", err)
	}
	dir := st.Path(set)
	outside := filepath.Join(t.TempDir(), "res2a_branch2a_weights")
	b, _ := os.ReadFile(filepath.Join(dir, "res2a_branch2a_weights"))
	os.WriteFile(outside, b, 0o644)
	for _, tc := range []struct{ name, target, want string }{
		{"extra", "/etc/passwd", `extra: symlink to "/etc/passwd" points outside the weight set`},
		{"res2a_branch2a_weights", outside, `res2a_branch2a_weights: symlink to "` + outside + `" points outside the weight set`},
		{"dangling", "nowhere", `dangling: symlink to "nowhere" does not resolve`},
		{"up", "../tsm_test/conv1_weights", ""}, // resolves inside
	} {
		p := filepath.Join(dir, tc.name)
		os.Remove(p)
		if err := os.Symlink(tc.target, p); err != nil {
			t.Fatal(err)
		}
		err := st.Verify(ctx, set)
		if tc.want == "" {
			if err != nil && !errors.Is(err, ErrChecksum) {
				t.Errorf("%s -> %s: %v", tc.name, tc.target, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: Verify = %v, want %q", tc.name, tc.target, err, tc.want)
		}
		os.Remove(p)
	}
}

func TestListDirFollowsSymlinks(t *testing.T) {
	// A DVC, git-annex or Hugging Face checkout: every file a link into an
	// object store elsewhere.
	objects, dir := t.TempDir(), t.TempDir()
	names, err := ListDir(stemDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		b, err := os.ReadFile(filepath.Join(stemDir(t), n))
		if err != nil {
			t.Fatal(err)
		}
		obj := filepath.Join(objects, fmt.Sprint(i))
		os.WriteFile(obj, b, 0o444)
		if err := os.Symlink(obj, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(objects, filepath.Join(dir, "subdir")) // a link to a directory is no variable
	got, err := ListDir(dir)
	if err != nil || !slices.Equal(got, names) {
		t.Fatalf("ListDir of links = %v, %v; want %v", got, err, names)
	}
	ts, _, err := Load(dir, stemSpec())
	if err != nil || len(ts) != len(stemSpec()) {
		t.Fatalf("Load of links: %d tensors, %v", len(ts), err)
	}
	// A link whose target is gone (git-annex before `annex get`) names it.
	os.Symlink(filepath.Join(objects, "absent"), filepath.Join(dir, "fc_0.w_0"))
	_, err = Check(dir, map[string]Spec{"fc_0.w_0": {FP32, []int64{2048, 400}}})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Check with a dangling link = %v, want the missing target", err)
	}
}

func TestSetTensorsChecked(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "a.tar.gz")
	if err := os.WriteFile(file, stemArchive(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want map[string]Spec
		err  string
	}{
		{"all right", stemSpec(), ""},
		{"wrong shape", map[string]Spec{"conv1_weights": {FP32, []int64{64, 3, 3, 3}}}, "conv1_weights in " + file + ": shape [64 3 7 7], want [64 3 3 3]"},
		{"wrong dtype", map[string]Spec{"bn_conv1_scale": {FP64, []int64{64}}}, "bn_conv1_scale in " + file + ": dtype FP32, want FP64"},
		{"missing", map[string]Spec{"fc_0.w_0": {FP32, []int64{2048, 400}}}, "1 needed variables missing: fc_0.w_0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := testStore(t)
			set := Set{Name: "tsm_test", URL: "http://127.0.0.1:1/tsm_test.tar.gz", Tensors: tc.want}
			_, err := st.Import(ctx, set, file)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Import = %v, want ErrMismatch with %q", err, tc.err)
			}
			if st.Present(set) {
				t.Errorf("a refused archive was installed")
			}
			// The same files installed by hand fail verify.
			if _, err := st.Import(ctx, Set{Name: set.Name, URL: set.URL}, file); err != nil {
				t.Fatal(err)
			}
			if err := st.Verify(ctx, set); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify = %v, want ErrMismatch", err)
			}
		})
	}
}
