package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LockFile is the lock a run holds on its --save_dir, with the holder's
// description in it. It exists only while a run holds it (or after one was
// killed); the next run takes it over.
const LockFile = ".zoo.lock"

var (
	errBusy   = errors.New("locked by another run")
	errNoLock = errors.New("no file locks here")
)

// Holder describes the run that holds a save dir's lock.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Command string    `json:"command"`
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "a run that has not yet written its PID"
	}
	s := fmt.Sprintf("PID %d", h.PID)
	if host, _ := os.Hostname(); h.Host != "" && h.Host != host {
		s += " on " + h.Host
	}
	if h.Command != "" {
		s += ", " + h.Command
	}
	if !h.Started.IsZero() {
		s += ", started " + h.Started.Local().Format("2006-01-02 15:04:05")
	}
	return s
}

// BusyError reports a save dir that another run holds.
type BusyError struct {
	Dir    string
	Holder Holder
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("save dir %s is in use by another zoo run (%s); wait for it to end, or pass another --save_dir (test and infer: with --weights %s/NAME)",
		e.Dir, e.Holder, filepath.Clean(e.Dir))
}

// SaveDir is a --save_dir this process holds: one run at a time writes
// checkpoints, metrics and results in it. The lock is an flock(2) on
// LockFile, so the kernel drops it when the process dies however it dies;
// the file's content only names the holder for the error a second run
// prints.
type SaveDir struct {
	Path    string
	Notes   []string // what opening it found and did, for the user
	f       *os.File
	created bool // by OpenSaveDir: Close removes it again if still empty
}

// OpenSaveDir creates dir if needed, takes its lock for this process
// (command describes the run), takes over the lock of a dead run with a
// note, and cleans up what dead runs left (see cleanLeftovers). It fails at
// once with a *BusyError when a live run holds dir.
func OpenSaveDir(dir, command string) (*SaveDir, error) {
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("save dir %s cannot be created: %w", dir, err)
	}
	path := filepath.Join(dir, LockFile)
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("save dir %s is not writable: %w", dir, err)
		}
		switch err := tryLock(f); {
		case errors.Is(err, errBusy):
			f.Close()
			return nil, &BusyError{Dir: dir, Holder: readHolder(path)}
		case errors.Is(err, errNoLock):
			// Nothing tells a dead run from a live one: take nothing over
			// and clean nothing.
			f.Close()
			return &SaveDir{Path: dir, Notes: []string{fmt.Sprintf("warning: save dir %s cannot be locked (its file system has no flock): a second zoo run on it would not be refused", dir)}}, nil
		case err != nil:
			f.Close()
			return nil, fmt.Errorf("save dir %s: lock %s: %w", dir, LockFile, err)
		}
		// The holder removes the file before it unlocks; a run that opened
		// the file before that holds a lock on a name nobody finds any more,
		// and must start again with the new file.
		if !sameFile(f, path) {
			f.Close()
			continue
		}
		d := &SaveDir{Path: dir, f: f, created: errors.Is(statErr, fs.ErrNotExist)}
		if prev, err := decodeHolder(f); err == nil && prev.PID != 0 {
			d.Notes = append(d.Notes, fmt.Sprintf("note: took over the lock of %s in %s: that run ended without releasing it (killed?)", prev, dir))
		}
		host, _ := os.Hostname()
		b, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second), Command: command})
		if err := f.Truncate(0); err != nil {
			d.Close()
			return nil, fmt.Errorf("save dir %s: write %s: %w", dir, LockFile, err)
		}
		if _, err := f.WriteAt(append(b, '\n'), 0); err != nil {
			d.Close()
			return nil, fmt.Errorf("save dir %s: write %s: %w", dir, LockFile, err)
		}
		cleaned, err := cleanLeftovers(dir)
		d.Notes = append(d.Notes, cleaned...)
		if err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("save dir %s: could not take %s: other runs keep replacing it", dir, LockFile)
}

// Close releases the lock and removes the lock file (before unlocking, so
// a run waiting on the old file sees it go), and the directory itself when
// OpenSaveDir made it and the run wrote nothing (a test that found no
// checkpoint). Closing twice is not an error.
func (d *SaveDir) Close() error {
	if d == nil || d.f == nil {
		return nil
	}
	err := os.Remove(filepath.Join(d.Path, LockFile))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	d.f.Close()
	d.f = nil
	if d.created {
		os.Remove(d.Path) // fails, as it should, unless empty
	}
	return err
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

func decodeHolder(f *os.File) (Holder, error) {
	var h Holder
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n == 0 {
		return h, err
	}
	return h, json.Unmarshal(b[:n], &h)
}

// readHolder reads who holds a lock. The holder writes its description just
// after it took the lock, so an empty or half-written file is read again
// for a moment before giving up.
func readHolder(path string) Holder {
	var h Holder
	for range 20 {
		b, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(b, &h) == nil && h.PID != 0 {
			return h
		}
		time.Sleep(25 * time.Millisecond)
	}
	return Holder{}
}

// cleanLeftovers removes what a run killed in the middle of a write left in
// dir, which the caller holds: temp checkpoint directories and temp files
// (.NAME.tmp-*), a checkpoint moved aside to be replaced (.NAME.old; put
// back when the new one never arrived) and the writability probe. It
// returns one note naming what it did.
func cleanLeftovers(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("save dir %s: %w", dir, err)
	}
	var removed, restored []string
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".old") && e.IsDir():
			final := filepath.Join(dir, strings.TrimSuffix(name[1:], ".old"))
			if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
				if err := os.Rename(path, final); err != nil {
					return nil, fmt.Errorf("save dir %s: restore %s: %w", dir, final, err)
				}
				restored = append(restored, filepath.Base(final))
				continue
			}
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-"):
		case strings.HasPrefix(name, ".zoo-write-check-"):
		default:
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return nil, fmt.Errorf("save dir %s: remove the leftover %s: %w", dir, name, err)
		}
		removed = append(removed, name)
	}
	var notes []string
	if len(removed) > 0 {
		notes = append(notes, fmt.Sprintf("note: removed what an interrupted run left in %s: %s", dir, strings.Join(removed, ", ")))
	}
	if len(restored) > 0 {
		notes = append(notes, fmt.Sprintf("note: put back %s in %s: a run was killed while replacing it", strings.Join(restored, ", "), dir))
	}
	return notes, nil
}
