package data

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/internal/shareddata"
)

// TestCheckProgress: on a terminal, check draws a bar on stderr that ends
// at every video checked and is cleared; off one, it draws nothing.
func TestCheckProgress(t *testing.T) {
	videos := filepath.Join(shareddata.Dir(t), "videos")
	list := filepath.Join(t.TempDir(), "a.list")
	os.WriteFile(list, []byte(filepath.Join(videos, "part_0.mp4")+" 0\n"+filepath.Join(videos, "test.avi")+" 1\n"), 0o644)
	for _, tty := range []bool{true, false} {
		var out, errb bytes.Buffer
		f := &cmdutil.Factory{IO: &iostreams.IOStreams{Out: &out, ErrOut: &errb, ErrTTY: tty}}
		cmd := NewCmdCheck(f, nil)
		cmd.SetArgs([]string{list, "--workers", "2"})
		if err := cmd.Execute(); err != nil {
			t.Fatalf("tty %v: %v\n%s", tty, err, errb.String())
		}
		bar := strings.Contains(errb.String(), "] 2/2 checked, 0 failed") && strings.Contains(errb.String(), "\r\033[K")
		if bar != tty {
			t.Errorf("tty %v: progress bar drawn %v:\n%q", tty, bar, errb.String())
		}
		if !strings.Contains(out.String(), "164 frames") {
			t.Errorf("report:\n%s", out.String())
		}
	}
}
