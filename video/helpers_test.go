package video

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"github.com/zoo-ml/zoo/internal/shareddata"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// dataDir finds shared/data: $ZOO_SHARED_DATA, else ../shared/data beside
// the repository root (where CI clones it).
func dataDir(t testing.TB) string { return shareddata.Dir(t) }

func videoPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(dataDir(t), "videos", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test video: %v", err)
	}
	return p
}

func decoder(t testing.TB) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return d
}

// ffmpegFrame decodes frame k of path on its own, the way the test's
// independent reference does it: a select filter, rgb24 rawvideo.
func ffmpegFrame(t testing.TB, path string, k, w, h int) []byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:v:0",
		"-vf", fmt.Sprintf(`select=eq(n\,%d)`, k), "-vsync", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference decode of frame %d of %s: %v: %s", k, path, err, stderr.String())
	}
	if len(out) != 3*w*h {
		t.Fatalf("reference decode of frame %d of %s: %d bytes, want %d", k, path, len(out), 3*w*h)
	}
	return out
}

// Generated videos, made once per test binary.
var (
	genOnce sync.Once
	genDir  string
	genErr  error
)

type genVideo struct {
	name string
	args []string
}

// generated returns the directory holding the videos the tests make with
// ffmpeg's lavfi sources: see makeVideos.
func generated(t testing.TB) string {
	t.Helper()
	arm := videoPath(t, "arm_wrestling.mp4")
	genOnce.Do(func() { genDir, genErr = makeVideos(arm) })
	if genErr != nil {
		t.Fatalf("generate test videos: %v", genErr)
	}
	return genDir
}

func makeVideos(arm string) (string, error) {
	dir, err := os.MkdirTemp("", "zoo-video-test-")
	if err != nil {
		return "", err
	}
	src := func(size string, n int) []string {
		return []string{"-f", "lavfi", "-i", "testsrc=size=" + size + ":rate=10", "-frames:v", fmt.Sprint(n)}
	}
	vids := []genVideo{
		// Portrait as coded.
		{"portrait.mp4", append(src("48x80", 20), "-c:v", "libx264", "-pix_fmt", "yuv444p")},
		// Landscape as coded, turned portrait by its rotation matrix below.
		{"rot0.mp4", append(src("64x48", 12), "-c:v", "libx264", "-pix_fmt", "yuv444p")},
		// Odd sides, which 4:2:0 cannot code.
		{"odd.mkv", append(src("101x57", 9), "-c:v", "libx264", "-pix_fmt", "yuv444p")},
		{"vp9.webm", append(src("96x64", 15), "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")},
		// For smallConfig (short 48, target 40): exactly target square,
		// which group_scale enlarges, and an odd center-crop offset that
		// rounds up (round(7.5) = 8).
		{"square.mp4", append(src("40x40", 6), "-c:v", "libx264", "-pix_fmt", "yuv444p")},
		{"oddcrop.mp4", append(src("55x48", 6), "-c:v", "libx264", "-pix_fmt", "yuv444p")},
		// Landscape larger than short_size, to exercise downscaling.
		{"big.mp4", append(src("400x300", 10), "-c:v", "libx264", "-pix_fmt", "yuv444p")},
	}
	for _, v := range vids {
		args := append([]string{"-v", "error", "-nostdin", "-y"}, v.args...)
		args = append(args, filepath.Join(dir, v.name))
		if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ffmpeg %s: %v: %s", v.name, err, out)
		}
	}
	// rotated.mp4: rot0.mp4 with the video track's tkhd matrix set to a
	// rotation, which ffprobe reports as rotation=-90.
	b, err := os.ReadFile(filepath.Join(dir, "rot0.mp4"))
	if err != nil {
		return "", err
	}
	var ident, rot bytes.Buffer
	binary.Write(&ident, binary.BigEndian, [9]int32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000})
	binary.Write(&rot, binary.BigEndian, [9]int32{0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000})
	tk := bytes.Index(b, []byte("tkhd"))
	if tk < 0 {
		return "", fmt.Errorf("rot0.mp4 has no tkhd")
	}
	m := bytes.Index(b[tk:], ident.Bytes())
	if m < 0 {
		return "", fmt.Errorf("rot0.mp4 tkhd has no identity matrix")
	}
	copy(b[tk+m:], rot.Bytes())
	if err := os.WriteFile(filepath.Join(dir, "rotated.mp4"), b, 0o644); err != nil {
		return "", err
	}
	// Broken files.
	whole, err := os.ReadFile(arm)
	if err != nil {
		return "", err
	}
	writes := map[string][]byte{
		"truncated.mp4": whole[:len(whole)/2],
		"zero.mp4":      nil,
		"text.mp4":      []byte("this is not a video\n"),
	}
	for name, data := range writes {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if genDir != "" {
		os.RemoveAll(genDir)
	}
	os.Exit(code)
}

func mustSample(t testing.TB, d *Decoder, path string, idx func(n int) []int) ([]*Image, int) {
	t.Helper()
	frames, n, err := d.Sample(context.Background(), path, idx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return frames, n
}
