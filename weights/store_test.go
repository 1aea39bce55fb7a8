package weights

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type member struct {
	name     string
	typ      byte
	body     []byte
	linkname string
	mode     int64
}

func tarBytes(t testing.TB, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Size: int64(len(m.body)), Linkname: m.linkname, Mode: 0o644, ModTime: time.Unix(1e9, 0), Format: tar.FormatPAX}
		if m.mode != 0 {
			h.Mode = m.mode
		}
		if m.typ != tar.TypeReg {
			h.Size = 0
		}
		if m.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.body); err != nil && m.typ == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// stemMembers returns the real resnet50_stem files as archive members,
// under top ("" for a flat archive).
var stemOnce struct {
	sync.Once
	files map[string][]byte
}

func stemMembers(t testing.TB, top string) []member {
	stemOnce.Do(func() {
		stemOnce.files = map[string][]byte{}
		dir := stemDir(t)
		names, err := ListDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			stemOnce.files[n] = b
		}
	})
	var ms []member
	if top != "" {
		ms = append(ms, member{name: top + "/", typ: tar.TypeDir})
		top += "/"
	}
	for _, n := range sortedKeys(stemOnce.files) {
		ms = append(ms, member{name: top + n, typ: tar.TypeReg, body: stemOnce.files[n]})
	}
	return ms
}

func stemArchive(t testing.TB) []byte { return gz(tarBytes(t, stemMembers(t, "tsm_test"))) }

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

var required = []string{"conv1_weights", "bn_conv1_scale", "res2c_branch2c_weights"}

// server serves an archive at /video_classification/tsm_test.tar.gz with
// a handler chosen per request number (0-based); nil serves it properly,
// Range included.
type server struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	reqs    atomic.Int32
	full    atomic.Int32 // responses that sent the body from byte 0
	ranges  sync.Map     // request number -> Range header
	handler handlerFunc  // set before the server starts
}

type handlerFunc = func(n int, w http.ResponseWriter, r *http.Request, body []byte) bool

func newServer(t *testing.T, body []byte, h handlerFunc) *server {
	s := &server{handler: h}
	s.body.Store(&body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.reqs.Add(1)) - 1
		s.ranges.Store(n, r.Header.Get("Range"))
		if r.URL.Path != "/video_classification/tsm_test.tar.gz" {
			http.NotFound(w, r)
			return
		}
		b := *s.body.Load()
		if s.handler != nil && s.handler(n, w, r, b) {
			return
		}
		if r.Header.Get("Range") == "" {
			s.full.Add(1)
		}
		http.ServeContent(w, r, "x.tar.gz", time.Unix(1e9, 0), bytes.NewReader(b))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) set() Set {
	return Set{Name: "tsm_test", Model: "TSM", URL: s.URL + "/video_classification/tsm_test.tar.gz", Use: "weights", Required: required}
}

// dropAfter sends the headers for the whole body, then half of it, then
// kills the connection.
func dropAfter(w http.ResponseWriter, b []byte, n int) {
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(200)
	w.Write(b[:n])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func testStore(t *testing.T) (*Store, *[]ProgressEvent) {
	var mu sync.Mutex
	var evs []ProgressEvent
	st := &Store{
		Root:        filepath.Join(t.TempDir(), "weights"),
		Attempts:    3,
		Backoff:     5 * time.Millisecond,
		IdleTimeout: 300 * time.Millisecond,
		Progress: func(e ProgressEvent) {
			mu.Lock()
			evs = append(evs, e)
			mu.Unlock()
		},
	}
	return st, &evs
}

// leftovers lists entries of the root other than installed sets and the
// lock files: temp files and dirs must never stay behind.
func leftovers(t *testing.T, root string) []string {
	ents, _ := os.ReadDir(root)
	var out []string
	for _, e := range ents {
		n := e.Name()
		if n == LockFileName || (strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".lock")) || !strings.HasPrefix(n, ".") {
			continue
		}
		out = append(out, n)
	}
	return out
}

func checkInstalled(t *testing.T, st *Store, set Set) {
	t.Helper()
	got, err := ReadDir(st.Path(set), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 55 {
		t.Fatalf("%d variables installed, want 55", len(got))
	}
	for n, b := range stemOnce.files {
		var buf bytes.Buffer
		Encode(&buf, got[n])
		if !bytes.Equal(buf.Bytes(), b) {
			t.Fatalf("%s installed differs from the original", n)
		}
	}
	if err := st.Verify(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, st.Root); len(l) > 0 {
		t.Fatalf("left in the root: %v", l)
	}
}

func TestFetchAndResume(t *testing.T) {
	arch := stemArchive(t)
	cases := []struct {
		name      string
		handler   func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool
		wantRange string // Range header of the second request
		wantFull  int32
	}{
		{"plain", nil, "", 1},
		{"drop then resume", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			if n == 0 {
				dropAfter(w, b, len(b)/2)
				return true
			}
			return false
		}, fmt.Sprintf("bytes=%d-", len(arch)/2), 1},
		{"drop then server ignores range", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			if n == 0 {
				dropAfter(w, b, len(b)/3)
				return true
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b) // 200, whole body, Range ignored
			return true
		}, fmt.Sprintf("bytes=%d-", len(arch)/3), 1},
		{"500 then ok", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			if n == 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return true
			}
			return false
		}, "", 1},
		{"wrong range then restart", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			switch n {
			case 0:
				dropAfter(w, b, 1000)
				return true
			case 1: // claims a range other than the one asked for
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 5-%d/%d", len(b)-1, len(b)))
				w.WriteHeader(206)
				w.Write(b[5:])
				return true
			}
			return false
		}, "bytes=1000-", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, arch, tc.handler)
			st, evs := testStore(t)
			set := srv.set()
			dir, err := st.Fetch(context.Background(), set)
			if err != nil {
				t.Fatal(err)
			}
			if dir != filepath.Join(st.Root, "tsm_test") {
				t.Errorf("Fetch = %s", dir)
			}
			checkInstalled(t, st, set)
			if r, _ := srv.ranges.Load(1); tc.wantRange != "" && r != tc.wantRange {
				t.Errorf("second request Range %q, want %q", r, tc.wantRange)
			}
			if tc.handler != nil && srv.full.Load() > tc.wantFull {
				t.Errorf("%d full downloads, want at most %d", srv.full.Load(), tc.wantFull)
			}
			// Progress: download events with a known total end complete,
			// then verify, extract, done.
			var last ProgressEvent
			var phases []Phase
			for _, e := range *evs {
				if e.Phase == PhaseDownload {
					last = e
				}
				if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
					phases = append(phases, e.Phase)
				}
			}
			if last.Done != int64(len(arch)) || last.Total != int64(len(arch)) {
				t.Errorf("last download event %+v, want done = total = %d", last, len(arch))
			}
			if n := len(phases); n < 4 || !slices.Equal(phases[n-3:], []Phase{PhaseVerify, PhaseExtract, PhaseDone}) {
				t.Errorf("phases %v", phases)
			}
			// Present now: no network at all the second time.
			before := srv.reqs.Load()
			if _, err := st.Fetch(context.Background(), set); err != nil || srv.reqs.Load() != before {
				t.Errorf("second Fetch: %v, %d requests", err, srv.reqs.Load()-before)
			}
		})
	}
}

func TestFetchFailures(t *testing.T) {
	arch := stemArchive(t)
	corrupt := slices.Clone(arch)
	corrupt[len(corrupt)/2] ^= 0xff
	cases := []struct {
		name    string
		handler func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool
		pin     string
		want    []string
		wantIs  error
		reqs    int32 // 0: don't check
	}{
		{"404", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool { http.NotFound(w, r); return true },
			"", []string{"server answered 404 Not Found", "zoo weights import tsm_test FILE.tar.gz"}, nil, 1},
		{"500 retried then fails", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			http.Error(w, "x", 500)
			return true
		},
			"", []string{"3 attempts", "500 Internal Server Error", "zoo weights import"}, nil, 3},
		{"corrupt bytes vs pinned", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			w.Write(corrupt)
			return true
		}, hexSHA(arch), []string{"sha256 " + hexSHA(corrupt), "want " + hexSHA(arch) + " (pinned)"}, ErrChecksum, 1},
		{"stall", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.WriteHeader(200)
			w.Write(b[:100])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return true
		}, "", []string{"no data for 300ms", "zoo weights import"}, errIdle, 3},
		{"stall before headers", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			<-r.Context().Done()
			return true
		}, "", []string{"no data for 300ms"}, errIdle, 3},
		{"short body", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			dropAfter(w, b, 10)
			return true
		}, "", []string{"3 attempts"}, nil, 3},
		{"not gzip", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
			w.Write([]byte("<html>captive portal</html>"))
			return true
		},
			"", []string{"not a gzip archive"}, nil, 1},
		{"truncated gzip", func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool { w.Write(b[:len(b)/2]); return true },
			"", []string{"truncated or corrupt archive"}, nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, arch, tc.handler)
			st, _ := testStore(t)
			set := srv.set()
			set.SHA256 = tc.pin
			start := time.Now()
			_, err := st.Fetch(context.Background(), set)
			if err == nil {
				t.Fatal("Fetch: no error")
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			msg := err.Error()
			for _, w := range append(tc.want, `weights: fetch "tsm_test"`) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\nlacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") || strings.Count(msg, "weights:") != 1 {
				t.Errorf("error is not one clean line: %q", msg)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error does not wrap %v", tc.wantIs)
			}
			if tc.reqs != 0 && srv.reqs.Load() != tc.reqs {
				t.Errorf("%d requests, want %d", srv.reqs.Load(), tc.reqs)
			}
			if st.Present(set) {
				t.Error("set installed after a failed fetch")
			}
			// Only a partial download may stay, to be resumed; never an
			// empty one, nor one that failed its checksum or extraction.
			for _, l := range leftovers(t, st.Root) {
				st, _ := os.Stat(filepath.Join(st.Root, l))
				if !strings.HasSuffix(l, ".part") || st.Size() == 0 || tc.wantIs == ErrChecksum || tc.reqs == 1 {
					t.Errorf("left in the root: %s", l)
				}
			}
		})
	}
}

func TestTrustOnFirstUse(t *testing.T) {
	arch := stemArchive(t)
	srv := newServer(t, arch, nil)
	st, _ := testStore(t)
	set := srv.set()
	ctx := context.Background()
	if _, err := st.Fetch(ctx, set); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(st.Root, LockFileName))
	if err != nil || !strings.Contains(string(b), hexSHA(arch)) {
		t.Fatalf("lock file %s lacks the archive hash (%v)", b, err)
	}
	if err := st.Remove(ctx, set); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove(ctx, set); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second Remove = %v, want ErrNotInstalled", err)
	}
	// The server now serves other (well-formed) weights: refused.
	other := gz(tarBytes(t, stemMembers(t, "other")))
	srv.body.Store(&other)
	_, err = st.Fetch(ctx, set)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "recorded in "+filepath.Join(st.Root, LockFileName)) {
		t.Fatalf("Fetch of changed archive = %v, want ErrChecksum naming the lock file", err)
	}
	if st.Present(set) {
		t.Error("installed despite the checksum")
	}
	// The right archive again: fine.
	srv.body.Store(&arch)
	if _, err := st.Fetch(ctx, set); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, st, set)
}

func TestVerifyListRemove(t *testing.T) {
	srv := newServer(t, stemArchive(t), nil)
	st, _ := testStore(t)
	set := srv.set()
	ctx := context.Background()
	foreign := Set{Name: "ResNet50_pretrained", URL: srv.URL + "/none.tar.gz", Required: []string{"conv1_weights"}}
	absent := Set{Name: "absent", URL: srv.URL + "/absent.tar.gz"}
	if _, err := st.Fetch(ctx, set); err != nil {
		t.Fatal(err)
	}
	// A directory a Paddle user already has: used as is, no network.
	before := srv.reqs.Load()
	if err := os.MkdirAll(st.Path(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(stemDir(t), "conv1_weights"), filepath.Join(st.Path(foreign), "conv1_weights"))
	if _, err := st.Fetch(ctx, foreign); err != nil || srv.reqs.Load() != before {
		t.Fatalf("Fetch of a present foreign set: %v, %d requests", err, srv.reqs.Load()-before)
	}
	ls, err := st.List(ctx, []Set{set, foreign, absent})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, b := range stemOnce.files {
		size += int64(len(b))
	}
	if !ls[0].Present || !ls[0].Verified || ls[0].Size != size || ls[0].Problem != nil {
		t.Errorf("list %+v", ls[0])
	}
	if !ls[1].Present || ls[1].Verified || ls[1].Problem != nil {
		t.Errorf("foreign: %+v, want present, not verified, no problem", ls[1])
	}
	if ls[2].Present || ls[2].Verified || ls[2].Path != filepath.Join(st.Root, "absent") {
		t.Errorf("absent: %+v", ls[2])
	}
	if err := st.Verify(ctx, absent); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "zoo weights fetch absent") {
		t.Errorf("Verify(absent) = %v", err)
	}
	// Tampering is caught.
	p := filepath.Join(st.Path(set), "bn_conv1_mean")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o644)
	if err := st.Verify(ctx, set); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "changed since") {
		t.Errorf("Verify after tampering = %v", err)
	}
	os.WriteFile(p, b[:len(b)-1], 0o644)
	if err := st.Verify(ctx, set); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "bn_conv1_mean") {
		t.Errorf("Verify after truncation = %v", err)
	}
	os.Remove(p)
	ls, _ = st.List(ctx, []Set{set})
	if ls[0].Verified || ls[0].Problem == nil {
		t.Errorf("list after damage: %+v", ls[0])
	}
	// A missing required variable.
	os.Remove(filepath.Join(st.Path(set), "conv1_weights"))
	if err := st.Verify(ctx, set); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "missing: conv1_weights") {
		t.Errorf("Verify without conv1_weights = %v", err)
	}
	if err := st.Remove(ctx, set); err != nil || st.Present(set) {
		t.Fatalf("Remove: %v", err)
	}
	if l := leftovers(t, st.Root); len(l) > 0 {
		t.Errorf("left in the root: %v", l)
	}
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImport(t *testing.T) {
	st, _ := testStore(t)
	set := Set{Name: "tsm_test", URL: "http://127.0.0.1:1/video_classification/tsm_test.tar.gz", Required: required}
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.tar.gz", stemArchive(t))
	flat := write("flat.tar.gz", gz(tarBytes(t, stemMembers(t, ""))))
	if _, err := st.Import(ctx, set, flat); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, st, set)
	if _, err := st.Import(ctx, set, good); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Import of a different archive than the recorded one = %v, want ErrChecksum", err)
	}
	set.Name, set.Dir = "tsm_test2", "tsm_test2"
	if _, err := st.Import(ctx, set, good); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, st, set)
	// Importing again replaces the installed copy.
	if _, err := st.Import(ctx, set, good); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, st, set)
	if _, err := st.Import(ctx, set, filepath.Join(dir, "missing.tar.gz")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Import(missing) = %v", err)
	}
}

func TestHostileArchives(t *testing.T) {
	stem := stemMembers(t, "tsm_test")
	notParam := member{name: "tsm_test/README", typ: tar.TypeReg, body: []byte("hello")}
	cases := []struct {
		name  string
		extra []member
		limit int64
		want  string
		is    error
	}{
		{"absolute path", []member{{name: "/tmp/evil", typ: tar.TypeReg, body: []byte("x")}}, 0, "absolute path", ErrUnsafeArchive},
		{"dot dot", []member{{name: "tsm_test/../../evil", typ: tar.TypeReg, body: []byte("x")}}, 0, `".." in path`, ErrUnsafeArchive},
		{"symlink absolute", []member{{name: "tsm_test/l", typ: tar.TypeSymlink, linkname: "/etc/passwd"}}, 0, "points outside", ErrUnsafeArchive},
		{"symlink up", []member{{name: "tsm_test/l", typ: tar.TypeSymlink, linkname: "../../x"}}, 0, "points outside", ErrUnsafeArchive},
		{"hard link outside", []member{{name: "tsm_test/l", typ: tar.TypeLink, linkname: "../etc/passwd"}}, 0, "points outside", ErrUnsafeArchive},
		{"write through symlink", []member{{name: "tsm_test/d", typ: tar.TypeSymlink, linkname: "sub"}, {name: "tsm_test/d/x", typ: tar.TypeReg, body: []byte("x")}}, 0, "is not a directory", ErrUnsafeArchive},
		{"char device", []member{{name: "tsm_test/null", typ: tar.TypeChar}}, 0, "not a file, directory or link", ErrUnsafeArchive},
		{"block device", []member{{name: "tsm_test/sda", typ: tar.TypeBlock}}, 0, "not a file, directory or link", ErrUnsafeArchive},
		{"fifo", []member{{name: "tsm_test/fifo", typ: tar.TypeFifo}}, 0, "not a file, directory or link", ErrUnsafeArchive},
		{"duplicate member", []member{{name: "tsm_test/conv1_weights", typ: tar.TypeReg, body: []byte("x")}}, 0, "cannot create", ErrUnsafeArchive},
		{"too big", nil, 100_000, "unpacked size above the limit of 100000 bytes", ErrUnsafeArchive},
		{"not a parameter file", []member{notParam}, 0, "README: not a fluid LoDTensor file", ErrFormat},
		{"required missing", nil, 0, "needed variables missing", ErrMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := testStore(t)
			set := Set{Name: "tsm_test", Required: required}
			if tc.name == "required missing" {
				set.Required = append(slices.Clone(required), "fc_0.w_0")
			}
			// A good copy is installed first: it must survive.
			good := filepath.Join(t.TempDir(), "good.tar.gz")
			os.WriteFile(good, stemArchive(t), 0o644)
			if tc.name != "required missing" {
				if _, err := st.Import(context.Background(), set, good); err != nil {
					t.Fatal(err)
				}
				// The lock records the good archive; the hostile one is
				// refused for its content, not its hash.
				os.Remove(filepath.Join(st.Root, LockFileName))
			}
			st.MaxUnpacked = tc.limit
			ms := append(slices.Clone(stem), tc.extra...)
			arch := filepath.Join(t.TempDir(), "evil.tar.gz")
			os.WriteFile(arch, gz(tarBytes(t, ms)), 0o644)
			_, err := st.Import(context.Background(), set, arch)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), arch) {
				t.Fatalf("Import = %v, want %v naming the archive and %q", err, tc.is, tc.want)
			}
			if tc.name == "required missing" {
				if st.Present(set) {
					t.Error("installed")
				}
			} else {
				checkInstalled(t, st, Set{Name: "tsm_test", Required: required})
			}
			if l := leftovers(t, st.Root); len(l) > 0 {
				t.Errorf("left in the root: %v", l)
			}
			if _, err := os.Lstat("/tmp/evil"); err == nil && tc.name == "absolute path" {
				t.Error("/tmp/evil written")
			}
		})
	}
}

func TestSafeLinksInside(t *testing.T) {
	dst := t.TempDir()
	ms := []member{
		{name: "d/", typ: tar.TypeDir},
		{name: "d/f", typ: tar.TypeReg, body: []byte("x")},
		{name: "d/s", typ: tar.TypeSymlink, linkname: "f"},
		{name: "d/h", typ: tar.TypeLink, linkname: "d/f"},
	}
	if err := extractTarGz(bytes.NewReader(gz(tarBytes(t, ms))), dst, "a.tar.gz", 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d/s", "d/h"} {
		if b, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(b) != "x" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
}

func TestStoreEnvironment(t *testing.T) {
	t.Setenv("ZOO_WEIGHTS_DIR", "/data/w")
	t.Setenv("ZOO_WEIGHTS_MIRROR", "http://mirror.local/paddle/")
	t.Setenv("ZOO_OFFLINE", "1")
	st := FromEnv()
	if st.Root != "/data/w" || !st.Offline || DefaultRoot() != "/data/w" {
		t.Errorf("FromEnv = %+v", st)
	}
	set := Set{Name: "tsm_kinetics", URL: "https://paddlemodels.bj.bcebos.com/video_classification/tsm_kinetics.tar.gz"}
	if u := st.URL(set); u != "http://mirror.local/paddle/tsm_kinetics.tar.gz" {
		t.Errorf("URL = %s", u)
	}
	t.Setenv("ZOO_WEIGHTS_DIR", "")
	t.Setenv("HOME", "/home/u")
	if r := DefaultRoot(); r != "/home/u/.paddle/weights" {
		t.Errorf("DefaultRoot = %s", r)
	}
	if p := (&Store{Root: "/r"}).Path(Set{Name: "a", Dir: "b"}); p != "/r/b" {
		t.Errorf("Path = %s", p)
	}
}

func TestOfflineAndUnreachable(t *testing.T) {
	st, _ := testStore(t)
	set := Set{Name: "tsm_kinetics", URL: "https://paddlemodels.bj.bcebos.com/video_classification/tsm_kinetics.tar.gz"}
	st.Offline = true
	_, err := st.Fetch(context.Background(), set)
	want := []string{set.URL, filepath.Join(st.Root, "tsm_kinetics"), "zoo weights import tsm_kinetics FILE.tar.gz", "ZOO_OFFLINE=1"}
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("offline Fetch = %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("offline error %q lacks %q", err, w)
		}
	}
	// Unreachable: a closed loopback port.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	st.Offline = false
	st.Mirror = srv.URL + "/mirror"
	_, err = st.Fetch(context.Background(), set)
	want = []string{srv.URL + "/mirror/tsm_kinetics.tar.gz", filepath.Join(st.Root, "tsm_kinetics"), "zoo weights import tsm_kinetics FILE.tar.gz", "3 attempts", "connection refused"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("unreachable error %v lacks %q", err, w)
		}
	}
	// Cancellation stops the retries at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Fetch(ctx, set); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Fetch = %v", err)
	}
}

func TestRootIsAFile(t *testing.T) {
	st, _ := testStore(t)
	os.MkdirAll(filepath.Dir(st.Root), 0o755)
	if err := os.WriteFile(st.Root, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := Set{Name: "tsm_test", URL: "http://127.0.0.1:1/x.tar.gz"}
	for name, f := range map[string]func() error{
		"fetch":  func() error { _, err := st.Fetch(context.Background(), set); return err },
		"import": func() error { _, err := st.Import(context.Background(), set, "x.tar.gz"); return err },
		"remove": func() error { return st.Remove(context.Background(), set) },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), st.Root+" is not a directory") {
			t.Errorf("%s = %v", name, err)
		}
	}
	if _, err := st.Fetch(context.Background(), Set{Name: "../x"}); err == nil || !strings.Contains(err.Error(), "bad variable name") {
		t.Errorf("Fetch(../x) = %v", err)
	}
}

func TestConcurrentFetch(t *testing.T) {
	arch := stemArchive(t)
	// Slow the body down so the two fetches overlap.
	srv := newServer(t, arch, func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		for i := 0; i < len(b); i += len(b) / 4 {
			w.Write(b[i:min(i+len(b)/4, len(b))])
			w.(http.Flusher).Flush()
			time.Sleep(30 * time.Millisecond)
		}
		return true
	})
	st, _ := testStore(t)
	set := srv.set()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			s2 := *st // separate Store values share only the directory
			_, errs[i] = s2.Fetch(context.Background(), set)
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if n := srv.reqs.Load(); n != 1 {
		t.Errorf("%d downloads, want 1 (the second fetch waits and finds it installed)", n)
	}
	checkInstalled(t, st, set)
}

// TestMain runs the helper process of TestConcurrentProcesses.
func TestMain(m *testing.M) {
	if url := os.Getenv("ZOO_WEIGHTS_TEST_FETCH"); url != "" {
		st := &Store{Root: os.Getenv("ZOO_WEIGHTS_DIR"), Attempts: 2, Backoff: time.Millisecond, IdleTimeout: 5 * time.Second}
		_, err := st.Fetch(context.Background(), Set{Name: "tsm_test", URL: url, Required: required})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestConcurrentProcesses(t *testing.T) {
	arch := stemArchive(t)
	srv := newServer(t, arch, func(n int, w http.ResponseWriter, r *http.Request, b []byte) bool {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		time.Sleep(100 * time.Millisecond)
		w.Write(b[len(b)/2:])
		return true
	})
	st, _ := testStore(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			cmd := execCommand(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "ZOO_WEIGHTS_TEST_FETCH="+srv.set().URL, "ZOO_WEIGHTS_DIR="+st.Root)
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("process %d: %v: %s", i, errs[i], outs[i])
		}
	}
	if n := srv.reqs.Load(); n != 1 {
		t.Errorf("%d downloads by two processes, want 1", n)
	}
	checkInstalled(t, st, Set{Name: "tsm_test", Required: required})
}

func FuzzExtract(f *testing.F) {
	f.Add(tarBytes(f, []member{{name: "a/", typ: tar.TypeDir}, {name: "a/b", typ: tar.TypeReg, body: []byte("xyz")}}))
	f.Add(tarBytes(f, []member{{name: "l", typ: tar.TypeSymlink, linkname: "d"}, {name: "l/x", typ: tar.TypeReg, body: []byte("x")}}))
	f.Add(tarBytes(f, []member{{name: "../x", typ: tar.TypeReg, body: []byte("x")}}))
	f.Add(tarBytes(f, []member{{name: "h", typ: tar.TypeLink, linkname: "../../etc/passwd"}}))
	f.Add(tarBytes(f, []member{{name: "d/f", typ: tar.TypeReg, body: []byte("x")}, {name: "d/s", typ: tar.TypeSymlink, linkname: "f"}, {name: "e", typ: tar.TypeLink, linkname: "d/f"}}))
	f.Add(tarBytes(f, []member{{name: "c", typ: tar.TypeChar}}))
	f.Fuzz(func(t *testing.T, tarData []byte) {
		base := t.TempDir()
		dst := filepath.Join(base, "in")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		err := extractTarGz(bytes.NewReader(gz(tarData)), dst, "f.tar.gz", 1<<16)
		_ = err
		// Whatever happened, nothing exists beside dst and no link
		// inside dst resolves outside it.
		ents, _ := os.ReadDir(base)
		if len(ents) != 1 {
			t.Fatalf("entries beside the target: %v", ents)
		}
		var size int64
		filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.Type()&os.ModeSymlink != 0 {
				if r, err := filepath.EvalSymlinks(p); err == nil && !strings.HasPrefix(r, dst+string(filepath.Separator)) && r != dst {
					t.Fatalf("link %s resolves to %s, outside", p, r)
				}
			}
			if d.Type()&(os.ModeDevice|os.ModeNamedPipe|os.ModeSocket) != 0 {
				t.Fatalf("special file %s", p)
			}
			if info, err := d.Info(); err == nil && d.Type().IsRegular() {
				size += info.Size()
			}
			return nil
		})
		if size > 1<<16 {
			t.Fatalf("unpacked %d bytes, limit %d", size, 1<<16)
		}
	})
}

// A .part left by an earlier, killed process is resumed.
func TestResumeAcrossRuns(t *testing.T) {
	arch := stemArchive(t)
	srv := newServer(t, arch, nil)
	st, _ := testStore(t)
	if err := os.MkdirAll(st.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Root, ".tsm_test.tar.gz.part"), arch[:12345], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Fetch(context.Background(), srv.set()); err != nil {
		t.Fatal(err)
	}
	if r, _ := srv.ranges.Load(0); r != "bytes=12345-" || srv.reqs.Load() != 1 {
		t.Errorf("Range %q in %d requests, want bytes=12345- in 1", r, srv.reqs.Load())
	}
	checkInstalled(t, st, srv.set())
}

func TestMirror(t *testing.T) {
	srv := newServer(t, stemArchive(t), nil)
	st, _ := testStore(t)
	st.Mirror = srv.URL + "/video_classification/"
	set := srv.set()
	set.URL = "https://paddlemodels.bj.bcebos.com/video_classification/tsm_test.tar.gz"
	if _, err := st.Fetch(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, st, set)
}

// A fetch waits for another holder of the set's lock, as long as its
// context allows.
func TestLockWaitHonoursContext(t *testing.T) {
	st, _ := testStore(t)
	if err := os.MkdirAll(st.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), filepath.Join(st.Root, ".tsm_test.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err = st.Fetch(ctx, Set{Name: "tsm_test", URL: "http://127.0.0.1:1/tsm_test.tar.gz"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for lock") {
		t.Errorf("Fetch while locked = %v, want a deadline error waiting for the lock", err)
	}
}
