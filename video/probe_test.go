package video

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestProbe: frames, size, codec and the container's promised count of
// real files, and what a cut-off AVI and a text file give.
func TestProbe(t *testing.T) {
	d := decoder(t)
	avi, err := os.ReadFile(videoPath(t, "test.avi"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut.avi")
	os.WriteFile(cut, avi[:len(avi)/3], 0o644)
	text := filepath.Join(dir, "page.mp4")
	os.WriteFile(text, []byte("<html>404</html>\n"), 0o644)
	for _, tc := range []struct {
		path                   string
		frames, expected, w, h int
		codec, container       string
	}{
		{videoPath(t, "arm_wrestling.mp4"), 280, 280, 340, 256, "h264", "mp4"},
		{videoPath(t, "part_0.mp4"), 32, 32, 340, 256, "h264", "mp4"},
		{videoPath(t, "test.avi"), 164, 164, 320, 240, "mpeg4", "avi"},
	} {
		p, err := d.Probe(context.Background(), tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if p.Frames != tc.frames || p.Expected != tc.expected || p.Width != tc.w || p.Height != tc.h || p.Codec != tc.codec {
			t.Errorf("%s: %+v, want %d frames of %d, %dx%d %s", filepath.Base(tc.path), p, tc.frames, tc.expected, tc.w, tc.h, tc.codec)
		}
		if c := Container(tc.path); c != tc.container {
			t.Errorf("%s: container %q, want %q", tc.path, c, tc.container)
		}
	}
	p, err := d.Probe(context.Background(), cut)
	if p.Expected != 164 || p.Frames >= 164 || p.Frames == 0 {
		t.Errorf("cut.avi: %+v (%v), want fewer than the 164 frames promised", p, err)
	}
	if _, err := d.Probe(context.Background(), text); err == nil || Container(text) != "" {
		t.Errorf("a text file probed as a video (container %q)", Container(text))
	}
}

// TestErrorsJoined: Probe.Errors is ffmpeg's error lines, white space
// collapsed, blank lines dropped, joined by "; ".
func TestErrorsJoined(t *testing.T) {
	t.Parallel()
	var lg ffmpegLog
	lg.Write([]byte("[h264 @ 0x1] [error] error  while decoding\n[error] \n[mov @ 0x2] [fatal] moov atom\tnot found\n"))
	if got, want := lg.errors.joined(), "[h264 @ 0x1] error while decoding; [mov @ 0x2] moov atom not found"; got != want {
		t.Errorf("joined = %q, want %q", got, want)
	}
}
