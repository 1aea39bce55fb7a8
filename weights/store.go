package weights

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zoo-ml/zoo/internal/fsx"
)

// Set is a named set of pretrained weights, as a plugin describes it.
type Set struct {
	Name     string   // "tsm_kinetics"
	Model    string   // "TSM"
	URL      string   // the tar.gz to fetch
	Dir      string   // directory under the store's root; Name when empty
	SHA256   string   // pinned sha256 of the archive, hex; empty: trust the first download
	Use      string   // "pretrain" or "weights"
	Required []string // variables the archive must hold
	// Tensors is every variable the model reads from the set, with its
	// dtype and dims; import, fetch and verify check them all, so a
	// checkpoint of another model is refused whatever its names.
	Tensors map[string]Spec
}

func (s Set) dir() string {
	if s.Dir != "" {
		return s.Dir
	}
	return s.Name
}

// Sentinel errors of the store, for errors.Is.
var (
	ErrOffline      = errors.New("offline")
	ErrChecksum     = errors.New("checksum mismatch")
	ErrNotInstalled = errors.New("not installed")
)

// Defaults of a zero Store; tests shorten them.
const (
	DefaultAttempts       = 4
	DefaultBackoff        = time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	// DefaultMaxUnpacked caps what an archive may unpack to. tsm_kinetics
	// is about 100 MB and ResNet-152 weights about 250 MB; 8 GiB leaves room
	// for any video model and stops a gzip bomb well before a disk fills.
	DefaultMaxUnpacked = 8 << 30
	// DefaultMaxDownload caps an archive whose server does not say its
	// size (and refuses one that says it is larger): the same 8 GiB, as an
	// archive is never larger than what it unpacks to by much.
	DefaultMaxDownload = 8 << 30
)

// MaxBytesEnv names the variable that sets Store.MaxDownload.
const MaxBytesEnv = "ZOO_WEIGHTS_MAX_BYTES"

// LockFileName is the JSON file in the root that records the sha256 of
// every archive installed without a pinned hash, and a digest of every
// installed directory.
const LockFileName = "zoo-weights.lock"

// Store is the local weights directory. The zero value of every field
// but Root has a sensible default. Its methods do not change it, so one
// Store may serve concurrent calls; sets are locked per name, across
// processes too.
type Store struct {
	Root     string       // $ZOO_WEIGHTS_DIR or ~/.paddle/weights
	Mirror   string       // replaces the directory part of every URL
	Offline  bool         // never touch the network
	HTTP     *http.Client // nil: a client with ConnectTimeout
	Progress func(ProgressEvent)
	Log      *slog.Logger // nil: no logs

	Attempts       int           // download attempts (DefaultAttempts)
	Backoff        time.Duration // first retry delay, doubled each time (DefaultBackoff)
	ConnectTimeout time.Duration // DefaultConnectTimeout
	IdleTimeout    time.Duration // no bytes for this long aborts an attempt (DefaultIdleTimeout)
	MaxUnpacked    int64         // DefaultMaxUnpacked
	MaxDownload    int64         // largest archive to download (DefaultMaxDownload)

	envErr error // a bad variable FromEnv read, reported by every operation
}

// Phase names a step of Fetch or Import in a ProgressEvent.
type Phase string

// The phases, in order.
const (
	PhaseDownload Phase = "download"
	PhaseRetry    Phase = "retry" // Err holds why; the next attempt follows
	PhaseVerify   Phase = "verify"
	PhaseExtract  Phase = "extract"
	PhaseDone     Phase = "done"
)

// ProgressEvent reports a fetch's progress. Download events come at most
// every 100 ms and once at the end of each attempt.
type ProgressEvent struct {
	Set     string
	Phase   Phase
	Done    int64   // bytes of the archive on disk
	Total   int64   // archive size, -1 when the server does not say
	Rate    float64 // bytes per second over this attempt
	Attempt int
	Err     error // PhaseRetry only
}

// DefaultRoot is $ZOO_WEIGHTS_DIR, else ~/.paddle/weights (where Paddle's
// own scripts put weights, so a Paddle user's downloads are found), else
// .paddle/weights when there is no home directory.
func DefaultRoot() string {
	if d := os.Getenv("ZOO_WEIGHTS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".paddle", "weights")
	}
	return filepath.Join(home, ".paddle", "weights")
}

// FromEnv returns a Store configured from ZOO_WEIGHTS_DIR,
// ZOO_WEIGHTS_MIRROR, ZOO_WEIGHTS_MAX_BYTES and ZOO_OFFLINE=1. A bad value
// is the error of every operation of the Store.
func FromEnv() *Store {
	s := &Store{
		Root:    DefaultRoot(),
		Mirror:  os.Getenv("ZOO_WEIGHTS_MIRROR"),
		Offline: os.Getenv("ZOO_OFFLINE") == "1",
	}
	if v := os.Getenv(MaxBytesEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			s.envErr = fmt.Errorf("weights: %s=%q: want a number of bytes above 0, e.g. %s=20000000000", MaxBytesEnv, v, MaxBytesEnv)
		}
		s.MaxDownload = n
	}
	return s
}

// Path returns the directory set is installed in.
func (s *Store) Path(set Set) string { return filepath.Join(s.Root, set.dir()) }

// Present reports whether set's directory exists.
func (s *Store) Present(set Set) bool {
	return checkName(set.dir()) == nil && isDir(s.Path(set))
}

// URL returns the URL set is fetched from, with the mirror applied.
func (s *Store) URL(set Set) string {
	if s.Mirror == "" {
		return set.URL
	}
	base := set.URL
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	if q := strings.IndexAny(base, "?#"); q >= 0 {
		base = base[:q]
	}
	return strings.TrimRight(s.Mirror, "/") + "/" + base
}

func (s *Store) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Store) progress(e ProgressEvent) {
	if s.Progress != nil {
		s.Progress(e)
	}
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// prepare checks the set and the root, and takes the set's lock.
func (s *Store) prepare(ctx context.Context, set Set) (unlock func(), err error) {
	if s.envErr != nil {
		return nil, s.envErr
	}
	if err := checkName(set.Name); err != nil {
		return nil, err
	}
	if err := checkName(set.dir()); err != nil {
		return nil, err
	}
	if s.Root == "" {
		return nil, errors.New("weights: no weights directory: set ZOO_WEIGHTS_DIR")
	}
	if st, err := os.Stat(s.Root); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("weights: weights directory %s is not a directory (set ZOO_WEIGHTS_DIR elsewhere)", s.Root)
	}
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	return lockFile(ctx, filepath.Join(s.Root, "."+set.dir()+".lock"))
}

// Fetch makes sure set is installed and returns its directory. A set
// already present is used as is, without the network. Otherwise the
// archive is downloaded beside the target (resuming a partial download),
// checked against the pinned or recorded sha256, extracted, checked and
// renamed into place. On any error the previous state is left as it was.
func (s *Store) Fetch(ctx context.Context, set Set) (string, error) {
	unlock, err := s.prepare(ctx, set)
	if err != nil {
		return "", fmt.Errorf("weights: fetch %q: %w", set.Name, trimPrefix(err))
	}
	defer unlock()
	dst := s.Path(set)
	if isDir(dst) {
		return dst, nil
	}
	url := s.URL(set)
	hint := fmt.Sprintf("download %s elsewhere and run: zoo weights import %s FILE.tar.gz", url, set.Name)
	if s.Offline {
		return "", fmt.Errorf("weights: fetch %q into %s: %w (ZOO_OFFLINE=1); %s", set.Name, dst, ErrOffline, hint)
	}
	part := filepath.Join(s.Root, "."+set.dir()+".tar.gz.part")
	if err := s.download(ctx, set, url, part); err != nil {
		// What is left of the download: kept when the next fetch can resume
		// it (the network failed, or Ctrl-C), removed when it cannot help
		// (a full disk needs the space back; an archive above the cap).
		left := ""
		if st, serr := os.Stat(part); serr == nil {
			switch {
			case noSpace(err) || errors.Is(err, ErrTooLarge):
				if rerr := os.Remove(part); rerr == nil {
					left = fmt.Sprintf(" (removed the partial download %s)", part)
				} else {
					left = fmt.Sprintf(" (could not remove the partial download %s: %v)", part, rerr)
				}
			case st.Size() == 0:
				os.Remove(part) // nothing to resume
			default:
				left = fmt.Sprintf("; kept the partial download %s (%d bytes): the next fetch resumes it", part, st.Size())
			}
		}
		switch {
		case ctx.Err() != nil:
			return "", fmt.Errorf("weights: fetch %q from %s: %w%s", set.Name, url, err, left)
		case noSpace(err) || errors.Is(err, ErrTooLarge):
			return "", fmt.Errorf("weights: fetch %q from %s: %w%s", set.Name, url, trimPrefix(err), left)
		}
		return "", fmt.Errorf("weights: fetch %q from %s into %s: %w%s; %s", set.Name, url, dst, err, left, hint)
	}
	if err := s.install(ctx, set, part, url); err != nil {
		// A complete but wrong archive: resuming it would never help; on a
		// full disk, the space is needed back.
		os.Remove(part)
		if noSpace(err) {
			return "", fmt.Errorf("weights: fetch %q: %w (removed the downloaded archive %s)", set.Name, trimPrefix(err), part)
		}
		return "", fmt.Errorf("weights: fetch %q: %w", set.Name, trimPrefix(err))
	}
	os.Remove(part)
	return dst, nil
}

// Import installs set from a local archive (for machines with no
// network), replacing an installed copy. The archive is checked as a
// download would be.
func (s *Store) Import(ctx context.Context, set Set, archive string) (string, error) {
	unlock, err := s.prepare(ctx, set)
	if err != nil {
		return "", fmt.Errorf("weights: import %q: %w", set.Name, trimPrefix(err))
	}
	defer unlock()
	if err := s.install(ctx, set, archive, archive); err != nil {
		return "", fmt.Errorf("weights: import %q: %w", set.Name, trimPrefix(err))
	}
	return s.Path(set), nil
}

// trimPrefix drops the "weights: " of an inner error, so the wrapped
// message says it once.
func trimPrefix(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "weights: "); ok {
		return prefixTrimmed{msg, err}
	}
	return err
}

type prefixTrimmed struct {
	msg string
	err error
}

func (p prefixTrimmed) Error() string { return p.msg }
func (p prefixTrimmed) Unwrap() error { return p.err }

// install checks archive's hash, extracts it into a temporary directory,
// checks every file and renames the result into place. from names the
// archive's origin in messages.
func (s *Store) install(ctx context.Context, set Set, archive, from string) error {
	s.progress(ProgressEvent{Set: set.Name, Phase: PhaseVerify})
	sum, err := fileSHA256(archive)
	if err != nil {
		return err
	}
	lf, err := s.readLock()
	if err != nil {
		return err
	}
	want, wantFrom := strings.ToLower(set.SHA256), "pinned"
	if want == "" {
		want, wantFrom = lf.Sets[set.Name].ArchiveSHA256, "recorded in "+filepath.Join(s.Root, LockFileName)
	}
	if want != "" && sum != want {
		return fmt.Errorf("weights: %s: sha256 %s, want %s (%s): %w", from, sum, want, wantFrom, ErrChecksum)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.progress(ProgressEvent{Set: set.Name, Phase: PhaseExtract})
	dst := s.Path(set)
	var (
		prev     lockEntry
		hadPrev  bool
		recorded bool
	)
	err = replaceDir(dst, func(tmp string) error {
		f, err := os.Open(archive)
		if err != nil {
			return fmt.Errorf("weights: %w", err)
		}
		defer f.Close()
		unpack := filepath.Join(tmp, ".unpack")
		if err := os.Mkdir(unpack, 0o755); err != nil {
			return fmt.Errorf("weights: %w", err)
		}
		if err := extractTarGz(f, unpack, from, orDefault(s.MaxUnpacked, DefaultMaxUnpacked)); err != nil {
			return err
		}
		root := unpack
		if ents, err := os.ReadDir(unpack); err == nil && len(ents) == 1 && ents[0].IsDir() {
			root = filepath.Join(unpack, ents[0].Name()) // Paddle's layout: NAME/<files>
		}
		// Move the content up into tmp, the directory that is renamed
		// into place.
		ents, err := os.ReadDir(root)
		if err != nil {
			return fmt.Errorf("weights: %w", err)
		}
		for _, e := range ents {
			if err := os.Rename(filepath.Join(root, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
				return fmt.Errorf("weights: %w", err)
			}
		}
		if err := os.RemoveAll(unpack); err != nil {
			return fmt.Errorf("weights: %w", err)
		}
		tree, err := checkTree(ctx, tmp, set, from)
		if err != nil {
			return err
		}
		// Record the set before it is renamed into place, not after: a
		// lock file that cannot be written (a full disk) then leaves the
		// store as it was, instead of a set installed but not pinned.
		err = s.updateLock(func(lf *lockData) {
			prev, hadPrev = lf.Sets[set.Name]
			e := prev
			e.URL, e.ArchiveSHA256, e.TreeSHA256 = s.URL(set), sum, tree
			lf.Sets[set.Name] = e
		})
		recorded = err == nil
		return err
	})
	if err != nil {
		if recorded { // the rename failed: take the record back
			if rerr := s.updateLock(func(lf *lockData) {
				if hadPrev {
					lf.Sets[set.Name] = prev
				} else {
					delete(lf.Sets, set.Name)
				}
			}); rerr != nil {
				s.log().Error("could not restore the lock file", "set", set.Name, "err", rerr)
			}
		}
		return err
	}
	s.log().Info("installed weights", "set", set.Name, "dir", dst, "sha256", sum)
	s.progress(ProgressEvent{Set: set.Name, Phase: PhaseDone})
	return nil
}

// checkTree checks that every regular file under dir is a well-formed
// parameter file, that every symlink resolves to a file or directory inside
// dir (a link to /etc/passwd in a set is an error, not a variable), and
// that the set's variables are there with their dtype and dims. It returns
// a digest of the tree: sha256 over each file's relative path and sha256,
// and each link's path and target. from names dir in messages.
func checkTree(ctx context.Context, dir string, set Set, from string) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("weights: %w", err)
	}
	tree := sha256.New()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		where := from + ": " + filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			ln, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("weights: %w", err)
			}
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("weights: %s: symlink to %q does not resolve", where, ln)
			}
			if !within(root, target) {
				return fmt.Errorf("weights: %s: symlink to %q points outside the weight set", where, ln)
			}
			fmt.Fprintf(tree, "%s\x00-> %s\n", filepath.ToSlash(rel), ln)
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("weights: %s: not a regular file (%v)", where, d.Type())
		}
		if _, err := readHeader(p); err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				c := *fe
				c.Path = where
				return &c
			}
			return err
		}
		sum, err := fileSHA256(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(tree, "%s\x00%s\n", filepath.ToSlash(rel), sum)
		return nil
	})
	if err != nil {
		return "", err
	}
	me := &MismatchError{Dir: from}
	names := slices.Clone(set.Required)
	for n := range set.Tensors {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, r := range names {
		p := filepath.Join(dir, r)
		if st, err := os.Stat(p); checkName(r) != nil || err != nil || !st.Mode().IsRegular() {
			me.Missing = append(me.Missing, r)
			continue
		}
		want, ok := set.Tensors[r]
		if !ok {
			continue
		}
		h, err := readHeader(p)
		if err != nil {
			return "", err // the walk read it; it changed since
		}
		if h.dtype != want.DType || !slices.Equal(h.dims, want.Dims) {
			me.Wrong = append(me.Wrong, wrongLine(r, from, want, h.dtype, h.dims))
		}
	}
	if len(me.Missing) > 0 || len(me.Wrong) > 0 {
		return "", me
	}
	return hex.EncodeToString(tree.Sum(nil)), nil
}

// within reports whether path is root or below it (both resolved).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func fileSHA256(path string) (string, error) {
	sum, err := fsx.SHA256(path)
	if err != nil {
		return "", fmt.Errorf("weights: %w", err)
	}
	return hex.EncodeToString(sum), nil
}

// Verify checks an installed set: every file parses, the required
// variables are there and, when zoo installed it, the files are unchanged
// since (their digest matches the lock file).
func (s *Store) Verify(ctx context.Context, set Set) error {
	_, err := s.verify(ctx, set)
	return err
}

// verify returns whether a recorded digest was checked.
func (s *Store) verify(ctx context.Context, set Set) (bool, error) {
	dst := s.Path(set)
	if !isDir(dst) {
		return false, fmt.Errorf("weights: verify %q: %s: %w; run: zoo weights fetch %s", set.Name, dst, ErrNotInstalled, set.Name)
	}
	tree, err := checkTree(ctx, dst, set, dst)
	if err != nil {
		return false, fmt.Errorf("weights: verify %q: %w; run: zoo weights rm %s && zoo weights fetch %s", set.Name, trimPrefix(err), set.Name, set.Name)
	}
	lf, err := s.readLock()
	if err != nil {
		return false, err
	}
	want := lf.Sets[set.Name].TreeSHA256
	if want == "" {
		return false, nil
	}
	if want != tree {
		return false, fmt.Errorf("weights: verify %q: files in %s changed since they were installed (digest %s, recorded %s): %w; run: zoo weights rm %s && zoo weights fetch %s",
			set.Name, dst, tree[:12], want[:min(12, len(want))], ErrChecksum, set.Name, set.Name)
	}
	return true, nil
}

// Remove deletes an installed set. The directory disappears at once (it
// is renamed aside, then deleted). The archive hash stays recorded.
func (s *Store) Remove(ctx context.Context, set Set) error {
	unlock, err := s.prepare(ctx, set)
	if err != nil {
		return fmt.Errorf("weights: remove %q: %w", set.Name, trimPrefix(err))
	}
	defer unlock()
	os.Remove(filepath.Join(s.Root, "."+set.dir()+".tar.gz.part"))
	dst := s.Path(set)
	if !isDir(dst) {
		return fmt.Errorf("weights: remove %q: %s: %w", set.Name, dst, ErrNotInstalled)
	}
	aside, err := os.MkdirTemp(s.Root, "."+set.dir()+".rm-")
	if err != nil {
		return fmt.Errorf("weights: remove %q: %w", set.Name, err)
	}
	if err := os.Rename(dst, filepath.Join(aside, "x")); err != nil {
		os.Remove(aside)
		return fmt.Errorf("weights: remove %q: %w", set.Name, err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("weights: remove %q: %w", set.Name, err)
	}
	return s.updateLock(func(lf *lockData) {
		if e, ok := lf.Sets[set.Name]; ok {
			e.TreeSHA256 = ""
			lf.Sets[set.Name] = e
		}
	})
}

// Status is one line of List.
type Status struct {
	Set      Set
	Path     string
	Present  bool
	Size     int64 // bytes of the installed files
	Verified bool  // present, well-formed and matching the digest recorded at install
	Problem  error // why Verified is false for a present set, if not just "no record"
}

// List reports the state of each set.
func (s *Store) List(ctx context.Context, sets []Set) ([]Status, error) {
	out := make([]Status, 0, len(sets))
	for _, set := range sets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st := Status{Set: set, Path: s.Path(set), Present: s.Present(set)}
		if st.Present {
			filepath.WalkDir(st.Path, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if info, err := d.Info(); err == nil {
						st.Size += info.Size()
					}
				}
				return nil
			})
			st.Verified, st.Problem = s.verify(ctx, set)
		}
		out = append(out, st)
	}
	return out, nil
}

// lockData is the lock file's content.
type lockData struct {
	Version int                  `json:"version"`
	Sets    map[string]lockEntry `json:"sets"`
}

type lockEntry struct {
	URL           string `json:"url"`
	ArchiveSHA256 string `json:"archive_sha256"`
	TreeSHA256    string `json:"tree_sha256,omitempty"`
}

func (s *Store) readLock() (*lockData, error) {
	p := filepath.Join(s.Root, LockFileName)
	lf := &lockData{Version: 1, Sets: map[string]lockEntry{}}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return lf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if err := json.Unmarshal(b, lf); err != nil {
		return nil, fmt.Errorf("weights: %s: %w (fix or remove it)", p, err)
	}
	if lf.Sets == nil {
		lf.Sets = map[string]lockEntry{}
	}
	return lf, nil
}

// updateLock changes the lock file under its own lock (sets are locked
// one by one, the file is shared), writing it atomically.
func (s *Store) updateLock(change func(*lockData)) error {
	unlock, err := lockFile(context.Background(), filepath.Join(s.Root, "."+LockFileName+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	lf, err := s.readLock()
	if err != nil {
		return err
	}
	change(lf)
	b, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	return atomicWrite(filepath.Join(s.Root, LockFileName), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
