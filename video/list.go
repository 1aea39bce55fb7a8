package video

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// NoLabel is the Label of an item whose list gave none (infer lists, and
// pkl items, whose label is inside the pickle).
const NoLabel = -1

// Item is one video of a list.
type Item struct {
	// Path is the video (or .pkl) path, resolved against the list file's
	// directory when relative.
	Path string
	// Label is the class index, or NoLabel.
	Label int
	// Where is "file:line" for error messages; the path alone for videos
	// found by listing a directory.
	Where string
}

// IsPKL reports whether the item is one of Paddle's pickled clips.
func (it Item) IsPKL() bool { return strings.EqualFold(filepath.Ext(it.Path), ".pkl") }

// VideoExts are the file extensions a directory listing takes as videos.
var VideoExts = []string{".mp4", ".avi", ".mkv", ".webm", ".mov"}

// ParseList reads a list file: one "path [label]" per line, the path
// relative to the list file's directory unless absolute, blank lines and
// lines starting with # skipped. requireLabel makes a missing label an
// error, except on .pkl lines, whose label is in the pickle. A directory in
// place of a list (infer) lists every video in it, sorted by name, without
// labels; with requireLabel it is an error.
func ParseList(path string, requireLabel bool) ([]Item, error) {
	return ParseFileList(path, requireLabel, "video", VideoExts)
}

// ParseFileList is ParseList for lists of any kind of file (plugins/resnet
// reads image lists with it): a directory lists the files whose extension
// is in exts, and kind ("video", "image") names them in errors.
func ParseFileList(path string, requireLabel bool, kind string, exts []string) ([]Item, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	if st.IsDir() {
		if requireLabel {
			return nil, fmt.Errorf("read list %s: a directory has no labels; give a list file of \"path label\" lines", path)
		}
		return listDir(path, kind, exts)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	var items []Item
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, line)
		fields := strings.Fields(text)
		it := Item{Path: fields[0], Label: NoLabel, Where: where}
		if !filepath.IsAbs(it.Path) {
			it.Path = filepath.Join(dir, it.Path)
		}
		switch len(fields) {
		case 1:
			if requireLabel && !it.IsPKL() {
				return nil, fmt.Errorf("%s: missing label after %q", where, fields[0])
			}
		case 2:
			n, err := strconv.Atoi(fields[1])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s: label %q is not a class index", where, fields[1])
			}
			it.Label = n
		default:
			return nil, fmt.Errorf("%s: want \"path [label]\", got %d fields (paths with spaces are not supported)", where, len(fields))
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read list %s: %w", path, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("read list %s: no %ss listed", path, kind)
	}
	return items, nil
}

// PathItems is what infer's one-path option names (TSM's video_path,
// ResNet's image_path): the file itself, or every file of a directory
// whose extension is in exts, sorted by name, as ParseFileList lists one.
func PathItems(path, kind string, exts []string) ([]Item, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: no such file or directory", path)
	}
	if !st.IsDir() {
		return []Item{{Path: path, Label: NoLabel, Where: path}}, nil
	}
	items, err := listDir(path, kind, exts)
	if err != nil {
		return nil, fmt.Errorf("%s: no %s files (%s) in the directory", path, kind, strings.Join(exts, " "))
	}
	return items, nil
}

func listDir(dir, kind string, exts []string) ([]Item, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	var items []Item
	for _, e := range ents {
		if e.IsDir() || !slices.Contains(exts, strings.ToLower(filepath.Ext(e.Name()))) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		items = append(items, Item{Path: p, Label: NoLabel, Where: p})
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("read list %s: no %s files (%s) in the directory", dir, kind, strings.Join(exts, " "))
	}
	return items, nil
}

// CheckLabels returns an error naming the first item whose label is not
// below numClasses.
func CheckLabels(items []Item, numClasses int) error {
	for _, it := range items {
		if it.Label != NoLabel && (it.Label < 0 || it.Label >= numClasses) {
			return fmt.Errorf("%s: label %d out of range [0, %d)", it.Where, it.Label, numClasses)
		}
	}
	return nil
}
