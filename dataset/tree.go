package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zoo-ml/zoo/internal/fsx"
	"github.com/zoo-ml/zoo/video"
)

// Entry is one line of a list: a video and its class index.
type Entry struct {
	// Path is the video's path as found (absolute or relative to the
	// working directory); WriteList makes it relative to the list.
	Path  string
	Label int
}

// List is a labelled set of videos and the class names of its indices.
type List struct {
	Labels  []string
	Entries []Entry
}

// TreeOptions are Tree's choices.
type TreeOptions struct {
	// Labels, when set, fixes the classes and their order (a model's
	// label list); every folder must name one of them. LabelsFrom names
	// where they came from in errors.
	Labels     []string
	LabelsFrom string
}

// Tree lists a class-per-folder tree, dir/<class>/<video>: one entry per
// video file (video.VideoExts), sorted by class index, then by path. With no
// Labels the classes are the folder names in sorted order. Files directly in
// dir, hidden entries and files of other extensions are not videos of any
// class and are counted in skipped.
func Tree(dir string, o TreeOptions) (l *List, skipped int, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: no such directory", dir)
	}
	if !st.IsDir() {
		return nil, 0, fmt.Errorf("%s: not a directory; give the folder holding one sub-folder per class", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", dir, err)
	}
	type class struct {
		name   string
		videos []string
	}
	var classes []class
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !e.IsDir() {
			skipped++
			continue
		}
		sub := filepath.Join(dir, e.Name())
		var vids []string
		err := filepath.WalkDir(sub, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && p != sub {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if isVideo(p) {
				vids = append(vids, p)
			} else {
				skipped++
			}
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", sub, err)
		}
		if len(vids) > 0 {
			classes = append(classes, class{e.Name(), vids})
		}
	}
	if len(classes) == 0 {
		return nil, 0, fmt.Errorf("%s: no videos (%s) in class folders; want %s/<class>/<video>", dir, strings.Join(video.VideoExts, " "), dir)
	}
	l = &List{}
	if o.Labels == nil {
		for _, c := range classes {
			l.Labels = append(l.Labels, c.name)
		}
		slices.Sort(l.Labels)
	} else {
		l.Labels = o.Labels
	}
	li := newLabelIndex(l.Labels)
	var unmatched []string
	seen := map[string]string{}
	for _, c := range classes {
		idx, hint := li.find(c.name)
		if idx < 0 {
			unmatched = append(unmatched, fmt.Sprintf("folder %q matches no class in %s%s", c.name, o.LabelsFrom, hint))
			continue
		}
		for _, v := range c.videos {
			// Duplicate names across classes are the same clip filed
			// twice (a downloader run per split, a copy): one label of
			// them is wrong, and a list cannot say which.
			base := filepath.Base(v)
			if prev, dup := seen[base]; dup {
				return nil, 0, fmt.Errorf("%s and %s: the same file name in two places; keep one (a clip has one class)", prev, v)
			}
			seen[base] = v
			l.Entries = append(l.Entries, Entry{Path: v, Label: idx})
		}
	}
	if len(unmatched) > 0 {
		more := ""
		if len(unmatched) > 1 {
			more = fmt.Sprintf(" (and %d more folders)", len(unmatched)-1)
		}
		return nil, 0, fmt.Errorf("%s: %s%s", dir, unmatched[0], more)
	}
	sortEntries(l.Entries)
	return l, skipped, nil
}

func isVideo(p string) bool {
	return slices.Contains(video.VideoExts, strings.ToLower(filepath.Ext(p)))
}

func sortEntries(es []Entry) {
	slices.SortStableFunc(es, func(a, b Entry) int {
		if a.Label != b.Label {
			return a.Label - b.Label
		}
		return strings.Compare(a.Path, b.Path)
	})
}

// Split divides entries into train and val, class by class: each class
// gives round(frac * its count) videos to val, at least one when it has two
// or more and never all of them. The choice is a function of seed alone;
// both parts come back sorted.
func Split(entries []Entry, frac float64, seed uint64) (train, val []Entry) {
	byClass := map[int][]Entry{}
	var order []int
	for _, e := range entries {
		if _, ok := byClass[e.Label]; !ok {
			order = append(order, e.Label)
		}
		byClass[e.Label] = append(byClass[e.Label], e)
	}
	for _, c := range order {
		es := slices.Clone(byClass[c])
		sortEntries(es)
		rng := rand.New(rand.NewPCG(seed, uint64(c)))
		rng.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		n := int(math.Round(frac * float64(len(es))))
		if n == 0 && len(es) >= 2 && frac > 0 {
			n = 1
		}
		if n >= len(es) {
			n = len(es) - 1
		}
		val = append(val, es[:n]...)
		train = append(train, es[n:]...)
	}
	sortEntries(train)
	sortEntries(val)
	return train, val
}

// WriteList writes entries as "path label" lines (a path alone for a
// negative label), each path relative to
// the list's directory with forward slashes (the list moves with its
// videos), atomically.
func WriteList(path string, entries []Entry) error {
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	var b strings.Builder
	for _, e := range entries {
		abs, err := filepath.Abs(e.Path)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		rel, err := filepath.Rel(base, abs)
		if err != nil {
			rel = abs
		}
		if strings.ContainsAny(rel, " \t\n") {
			return fmt.Errorf("%s: the path has white space, which \"path label\" lists cannot hold; rename it (Kinetics folders: spaces to underscores)", e.Path)
		}
		if e.Label < 0 {
			// An infer list: paths alone.
			fmt.Fprintf(&b, "%s\n", filepath.ToSlash(rel))
			continue
		}
		fmt.Fprintf(&b, "%s %d\n", filepath.ToSlash(rel), e.Label)
	}
	return WriteFile(path, []byte(b.String()))
}

// WriteLabels writes one class name per line.
func WriteLabels(path string, names []string) error {
	for i, n := range names {
		if strings.ContainsAny(n, "\n\r") || strings.TrimSpace(n) == "" {
			return fmt.Errorf("class %d %q cannot be a line of %s", i, n, path)
		}
	}
	return WriteFile(path, []byte(strings.Join(names, "\n")+"\n"))
}

// WriteFile writes data to path through a temporary file in its directory
// and a rename (internal/fsx), so a reader never sees half a list.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("write %s: directory %s does not exist", path, dir)
	}
	return fsx.WriteBytes(path, fsx.Options{}, data)
}
