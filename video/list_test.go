package video

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := filepath.Join(dir, "lists", "val.list")
	writeFile(t, list, "# Kinetics val\n\nvideos/a.mp4 6\n  /abs/b.avi 5  \nc.pkl\n")
	items, err := ParseList(list, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{filepath.Join(dir, "lists", "videos", "a.mp4"), 6, list + ":3"},
		{"/abs/b.avi", 5, list + ":4"},
		{filepath.Join(dir, "lists", "c.pkl"), NoLabel, list + ":5"},
	}
	if len(items) != len(want) {
		t.Fatalf("got %+v, want %+v", items, want)
	}
	for i := range want {
		if items[i] != want[i] {
			t.Errorf("item %d = %+v, want %+v", i, items[i], want[i])
		}
	}
}

// TestParseListErrors checks that each mistake is one line naming
// file:line.
func TestParseListErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		label      bool
		want       string
	}{
		{"missing_label", "a.mp4 1\nb.mp4\n", true, ":2: missing label"},
		{"bad_label", "a.mp4 x\n", true, `:1: label "x" is not a class index`},
		{"negative_label", "\n\na.mp4 -3\n", false, ":3: label"},
		{"spaces", "my video.mp4 3\n", true, ":1: want \"path [label]\""},
		{"empty", "# nothing\n\n", false, "no videos listed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name+".list")
			writeFile(t, p, tc.text)
			_, err := ParseList(p, tc.label)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line with %q and %q", msg, p, tc.want)
			}
		})
	}
	if _, err := ParseList(filepath.Join(dir, "none.list"), false); err == nil || !strings.Contains(err.Error(), "none.list") {
		t.Errorf("missing list: %v", err)
	}
	items := []Item{{Path: "a.mp4", Label: 3, Where: "l:1"}, {Path: "b.mp4", Label: 400, Where: "l:2"}}
	if err := CheckLabels(items, 400); err == nil || !strings.HasPrefix(err.Error(), "l:2: label 400") {
		t.Errorf("CheckLabels: %v", err)
	}
}

// TestParseListDirectory: for infer, a directory stands for every video in
// it, sorted, without labels; other files and subdirectories are left out.
func TestParseListDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"b.avi", "a.mp4", "c.MKV", "d.webm", "e.mov", "notes.txt", "sub/f.mp4"} {
		writeFile(t, filepath.Join(dir, name), "")
	}
	items, err := ParseList(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		if it.Label != NoLabel || it.Where != it.Path {
			t.Errorf("item %+v", it)
		}
		got = append(got, filepath.Base(it.Path))
	}
	if strings.Join(got, " ") != "a.mp4 b.avi c.MKV d.webm e.mov" {
		t.Errorf("listed %v", got)
	}
	if _, err := ParseList(dir, true); err == nil || !strings.Contains(err.Error(), "a directory has no labels") {
		t.Errorf("directory with labels required: %v", err)
	}
	empty := t.TempDir()
	if _, err := ParseList(empty, false); err == nil || !strings.Contains(err.Error(), "no video files") {
		t.Errorf("empty directory: %v", err)
	}
	// The real videos.
	items, err = ParseList(filepath.Join(dataDir(t), "videos"), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 5 {
		t.Errorf("%d videos in shared/data/videos, want 5", len(items))
	}
}

// TestRealList reads Paddle's own Kinetics list file.
func TestRealList(t *testing.T) {
	t.Parallel()
	p := filepath.Join(dataDir(t), "labels", "val_small_videos.list")
	items, err := ParseList(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) == 0 {
		t.Fatal("no items")
	}
	if err := CheckLabels(items, 400); err != nil {
		t.Error(err)
	}
	for _, it := range items {
		if !strings.HasPrefix(it.Path, filepath.Dir(p)+string(filepath.Separator)) || !strings.HasPrefix(it.Where, p+":") {
			t.Fatalf("item %+v", it)
		}
	}
}
