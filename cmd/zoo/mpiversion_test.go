package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMPIZooVersionsDisagree: ranks running different zoo builds (one
// linked with another version) but the same plugin fail at start with one
// line naming the zoo version as what differs. Before, the plugin build
// was compared and the host's version was not: the job trained.
func TestMPIZooVersionsDisagree(t *testing.T) {
	dir := mpiBin(t)
	other := t.TempDir()
	if out, err := exec.Command("go", "build", "-ldflags", "-X github.com/zoo-ml/zoo/host/cmd/root.Version=v0.0.0-other",
		"-o", filepath.Join(other, "zoo"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// the same plugin executable beside both zoos (a copy: same sha256)
	b, err := os.ReadFile(filepath.Join(dir, "zoo-plugin-tsm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "zoo-plugin-tsm"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	save := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"--oversubscribe", "-np", "1", filepath.Join(dir, "zoo")}
	args = append(args, mpiJob(save)...)
	args = append(args, ":", "-np", "1", filepath.Join(other, "zoo"))
	args = append(args, mpiJob(save)...)
	cmd := exec.CommandContext(ctx, "mpirun", args...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_OFFLINE=1")
	cmd.Env = append(cmd.Env, mpiEnv...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("still running after 3 minutes:\n%s", out)
	}
	if err == nil {
		t.Fatalf("ranks with different zoo versions: exit 0\n%s", out)
	}
	if !strings.Contains(string(out), "ranks disagree: rank 1's zoo version differs from rank 0's") {
		t.Errorf("the error does not name what differs:\n%s", out)
	}
	if strings.Contains(string(out), "[TRAIN]") {
		t.Errorf("ranks that disagree trained:\n%s", out)
	}
}
