package main_test

// Process lifetime and signals (issue 20, items 1, 2, 5 and 11's stdout
// flood), with real zoo and plugin processes: no plugin outlives its host
// however the host dies; a scheduler's SIGTERM or SIGHUP to the whole
// process group saves a checkpoint as Ctrl-C does; no plugin call can hang
// zoo; a plugin writing to stdout is reported.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/host/driver"
)

// orphanBound is how long a plugin may be seen alive after its host is
// gone. The issue promises 2 s; the bound is wider so that a loaded
// machine does not fail the test, and the measured time is logged.
const orphanBound = 5 * time.Second

// running is a zoo process started in a process group of its own (as a
// shell job, `timeout` or a batch scheduler starts it), whose stdout and
// stderr the test reads as they come.
type running struct {
	cmd    *exec.Cmd
	stdout *os.File // the read end: closing it breaks zoo's stdout pipe
	lines  chan string
	mu     sync.Mutex
	out    strings.Builder
	errb   bytes.Buffer
	done   chan struct{}
	code   int
}

func startZoo(t *testing.T, dir string, env []string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "zoo"), args...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_WEIGHTS_DIR="+t.TempDir(), "ZOO_OFFLINE=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	z := &running{cmd: cmd, stdout: r, lines: make(chan string, 1000), done: make(chan struct{})}
	cmd.Stdout = w
	cmd.Stderr = lockedWriter{&z.mu, &z.errb}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			z.mu.Lock()
			z.out.WriteString(sc.Text() + "\n")
			z.mu.Unlock()
			select {
			case z.lines <- sc.Text():
			default:
			}
		}
		close(z.lines)
	}()
	go func() {
		err := cmd.Wait()
		z.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			z.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				z.code = 128 + int(ws.Signal())
			}
		}
		close(z.done)
	}()
	t.Cleanup(func() {
		select {
		case <-z.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-z.done
		}
		r.Close()
	})
	return z
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (z *running) output() (string, string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.out.String(), z.errb.String()
}

// waitLine waits for a stdout line containing want.
func (z *running) waitLine(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-z.lines:
			if !ok {
				<-z.done
				out, errs := z.output()
				t.Fatalf("zoo ended (exit %d) before printing %q\nstdout:\n%s\nstderr:\n%s", z.code, want, out, errs)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			out, errs := z.output()
			t.Fatalf("no %q from zoo in 2 minutes\nstdout:\n%s\nstderr:\n%s", want, out, errs)
		}
	}
}

// wait waits for zoo to end and returns its exit code (128+N when a
// signal ended it).
func (z *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-z.done:
	case <-time.After(3 * time.Minute):
		out, errs := z.output()
		t.Fatalf("zoo still running after 3 minutes\nstdout:\n%s\nstderr:\n%s", out, errs)
	}
	// Drain what is left of stdout.
	for range z.lines {
	}
	return z.code
}

// procStat reads a process's state and parent; ok is false when the
// process is gone or a zombie (dead, waiting to be reaped).
func procStat(pid int) (ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, true
}

// pluginOf returns the pid of zoo's live child running the executable
// named exe; it fails when there is not exactly one.
func pluginOf(t *testing.T, zooPid int, exe string) int {
	t.Helper()
	var found []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := procStat(pid); !ok || ppid != zooPid {
			continue
		}
		if path, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && filepath.Base(path) == exe {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("zoo (pid %d) has %d live %s children %v, want 1", zooPid, len(found), exe, found)
	}
	return found[0]
}

// gone waits up to orphanBound for pid to end and fails if it does not;
// it returns how long that took.
func gone(t *testing.T, pid int, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if _, ok := procStat(pid); !ok {
			return time.Since(start)
		}
		if time.Since(start) > orphanBound {
			ppid, _ := procStat(pid)
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s (pid %d, now a child of %d) still alive %v after its host ended", what, pid, ppid, orphanBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoOrphanedPlugins: however zoo dies while training TSM, its
// zoo-plugin-tsm is gone within the bound (the promise is 2 s).
func TestNoOrphanedPlugins(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		kill func(z *running)
		code int // zoo's exit code; 0: any
	}{
		{"kill -9", nil, func(z *running) { z.cmd.Process.Signal(syscall.SIGKILL) }, 128 + 9},
		{"SIGPIPE from a closed stdout", nil, func(z *running) { z.stdout.Close() }, 128 + 13},
		// SIGHUP to zoo alone (its terminal went away, or `kill -HUP`):
		// zoo saves and stops its plugin, then exits 129.
		{"SIGHUP to zoo alone", nil, func(z *running) { z.cmd.Process.Signal(syscall.SIGHUP) }, 129},
		// A panic in a goroutine of zoo: no deferred Kill runs.
		{"a Go panic", []string{"ZOO_TEST_PANIC_ON_USR1=1"}, func(z *running) { z.cmd.Process.Signal(syscall.SIGUSR1) }, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := startZoo(t, binDir, tc.env, "run", "TSM", "train", "--save_dir", t.TempDir(), "--log_interval", "1")
			z.waitLine(t, "[TRAIN] Epoch 0, iter 1 ")
			plugin := pluginOf(t, z.cmd.Process.Pid, "zoo-plugin-tsm")
			tc.kill(z)
			code := z.wait(t)
			took := gone(t, plugin, "zoo-plugin-tsm")
			t.Logf("zoo exit %d; zoo-plugin-tsm gone %v after zoo", code, took)
			if code != tc.code {
				_, errs := z.output()
				t.Errorf("zoo exit code %d, want %d\nstderr:\n%s", code, tc.code, errs)
			}
		})
	}
}

// TestPluginExitsWithoutHost: the plugin side of the contract, for a
// plugin started by a host that sets no parent-death signal (another
// system, another host): it ignores the job's stop signals while its host
// lives, and exits by itself once the host is gone.
func TestPluginExitsWithoutHost(t *testing.T) {
	plugins := map[string][]string{"Go sdk (zoo-plugin-tsm)": {filepath.Join(binDir, "zoo-plugin-tsm")}}
	if py, err := pythonWithGRPC(); err == nil {
		src, _ := filepath.Abs(filepath.Join("..", "..", "examples", "python-plugin", "plugin.py"))
		plugins["Python (examples/python-plugin)"] = []string{py, src}
	} else {
		t.Errorf("no python3 with gRPC for the Python plugin (apt-get install python3-grpcio python3-protobuf): %v", err)
	}
	for name, argv := range plugins {
		t.Run(name, func(t *testing.T) {
			// A stand-in host: sh starts the plugin, prints its pid, and
			// waits; the plugin's handshake comes on the same stdout.
			host := exec.Command("sh", "-c", `"$@" & echo "pid $!"; wait`, "sh")
			host.Args = append(host.Args, argv...)
			host.Env = append(os.Environ(), "ZOO_PLUGIN_MAGIC_COOKIE=7f1c2a9e-zoo-model-plugin",
				"PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000", "PLUGIN_PROTOCOL_VERSIONS=1")
			host.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			out, err := host.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := host.Start(); err != nil {
				t.Fatal(err)
			}
			// Should the plugin never start, end both so the scan below ends.
			stuck := time.AfterFunc(2*time.Minute, func() { syscall.Kill(-host.Process.Pid, syscall.SIGKILL) })
			t.Cleanup(func() { stuck.Stop(); host.Process.Kill(); host.Wait() })
			sc := bufio.NewScanner(out)
			pid, handshake := 0, false
			for (pid == 0 || !handshake) && sc.Scan() {
				if p, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
					pid, _ = strconv.Atoi(p)
				} else if strings.Contains(sc.Text(), "|grpc") {
					handshake = true
				}
			}
			if pid == 0 || !handshake {
				t.Fatalf("plugin did not start: pid %d, handshake %v", pid, handshake)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			go io.Copy(io.Discard, out)
			// The job's stop signals belong to the host.
			for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
				syscall.Kill(pid, sig)
			}
			time.Sleep(500 * time.Millisecond)
			if _, ok := procStat(pid); !ok {
				t.Fatalf("the plugin died of SIGINT, SIGTERM or SIGHUP; it must leave them to its host")
			}
			host.Process.Signal(syscall.SIGKILL)
			host.Wait()
			took := gone(t, pid, "a plugin whose host was killed")
			t.Logf("plugin gone %v after its host", took)
		})
	}
}

// TestSignalsSaveCheckpoint: SIGINT, SIGTERM or SIGHUP to zoo's whole
// process group (Ctrl-C, `timeout`, Slurm, systemd) in the middle of an
// epoch of the built-in TSM job: the step finishes, a checkpoint is saved,
// zoo exits 130, 143 or 129, and --resume continues from it. "every
// process" also signals the plugin itself, as Slurm and kubelet may.
func TestSignalsSaveCheckpoint(t *testing.T) {
	tests := []struct {
		name   string
		sig    syscall.Signal
		plugin bool
		code   int
	}{
		{"SIGINT", syscall.SIGINT, false, 130},
		{"SIGTERM", syscall.SIGTERM, false, 143},
		{"SIGHUP", syscall.SIGHUP, false, 129},
		{"SIGTERM to every process", syscall.SIGTERM, true, 143},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			save := t.TempDir()
			z := startZoo(t, binDir, nil, "run", "TSM", "train", "--save_dir", save, "--log_interval", "1")
			z.waitLine(t, "[TRAIN] Epoch 0, iter 2 ")
			if tc.plugin {
				syscall.Kill(pluginOf(t, z.cmd.Process.Pid, "zoo-plugin-tsm"), tc.sig)
			}
			syscall.Kill(-z.cmd.Process.Pid, tc.sig)
			code := z.wait(t)
			out, errs := z.output()
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
			ckpt := lastSaved(t, save, "TSM")
			if ckpt == "" {
				t.Fatalf("no TSM checkpoint in %s\nstdout:\n%s\nstderr:\n%s", save, out, errs)
			}
			var st driver.State
			readJSON(t, filepath.Join(ckpt, driver.StateFile), &st)
			epochs := st.Epoch + 1
			if st.Complete {
				epochs++
			}
			r := zoo(t, nil, "run", "TSM", "train", "--save_dir", save, "--resume", ckpt, "--epoch", strconv.Itoa(epochs), "--valid_interval", "0")
			if r.code != 0 || !strings.Contains(r.stdout, "resuming TSM at epoch") {
				t.Fatalf("--resume %s: exit %d\n%s\n%s", ckpt, r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestHungPluginCalls: a plugin that never returns from Save or Close
// costs ZOO_PLUGIN_TIMEOUT, then is killed, and zoo exits 1 naming it; one
// whose Run ignores cancellation is killed by a second Ctrl-C. No plugin
// process is left.
func TestHungPluginCalls(t *testing.T) {
	tests := []struct {
		mode string
		want string
	}{
		{"save", "save checkpoint"},
		{"close", "close Hang: plugin zoo-plugin-hang did not answer Close within 2s"},
		{"run", "plugin zoo-plugin-hang was killed after a second SIGINT"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			dir := bundle(t, map[string]string{"zoo-plugin-hang": "broken-hang"})
			z := startZoo(t, dir, []string{"ZOO_TEST_HANG=" + tc.mode, "ZOO_PLUGIN_TIMEOUT=2s"},
				"run", "Hang", "train", "--save_dir", t.TempDir(), "--log_interval", "1")
			z.waitLine(t, "[TRAIN] Epoch 0, iter 0 ")
			plugin := pluginOf(t, z.cmd.Process.Pid, "zoo-plugin-hang")
			if tc.mode == "run" {
				z.cmd.Process.Signal(syscall.SIGINT)
				time.Sleep(300 * time.Millisecond)
				z.cmd.Process.Signal(syscall.SIGINT)
			}
			code := z.wait(t)
			out, errs := z.output()
			oneLineError(t, result{out, errs, code}, 1, tc.want)
			if tc.mode == "save" && !strings.Contains(errs, "did not answer Save within 2s") {
				t.Errorf("no Save deadline in:\n%s", errs)
			}
			gone(t, plugin, "the hung zoo-plugin-hang")
		})
	}
}

// TestPluginStdoutFlood: what a plugin writes to stdout after the
// handshake cannot be shown (stdout is the protocol's); zoo says so, naming
// the plugin, whether it came through Go's os.Stdout or the raw fd 1.
func TestPluginStdoutFlood(t *testing.T) {
	dir := bundle(t, map[string]string{"zoo-plugin-hang": "broken-hang"})
	r := zooAt(t, dir, []string{"ZOO_TEST_HANG=stdout"}, "run", "Hang", "train", "--save_dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"plugin zoo-plugin-hang writes to stdout, which zoo reserves for the handshake and discards",
		"plugin zoo-plugin-hang flooded stdout: ",
		"after the handshake, discarded; a plugin must log to stderr",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "xxxx") {
		t.Errorf("the plugin's stdout reached zoo's")
	}
}

// TestNohupIgnoresHangup: a signal ignored when zoo starts stays ignored,
// so `nohup zoo run ...` outlives its terminal's SIGHUP (zoo must not
// install its handler over the inherited SIG_IGN).
func TestNohupIgnoresHangup(t *testing.T) {
	dir := t.TempDir()
	nohup := fmt.Sprintf("#!/bin/sh\ntrap '' HUP\nexec %s \"$@\"\n", filepath.Join(binDir, "zoo"))
	if err := os.WriteFile(filepath.Join(dir, "zoo"), []byte(nohup), 0o755); err != nil {
		t.Fatal(err)
	}
	save := t.TempDir()
	z := startZoo(t, dir, nil, "run", "alpha", "train", "--save_dir", save, "--log_interval", "1", "--epoch", "1",
		"--set", "TRAIN.sleep_ms=50", "--set", "TRAIN.steps=20")
	z.waitLine(t, "[TRAIN] Epoch 0, iter 1 ")
	syscall.Kill(-z.cmd.Process.Pid, syscall.SIGHUP)
	if code := z.wait(t); code != 0 {
		out, errs := z.output()
		t.Fatalf("zoo under nohup: exit %d after SIGHUP, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(save, "Alpha_epoch0", driver.StateFile)); err != nil {
		t.Errorf("the run did not finish its epoch: %v", err)
	}
}

// lastSaved returns the checkpoint of model in save that was saved last,
// complete or interrupted ("" if none): the one a signal's save wrote.
func lastSaved(t *testing.T, save, model string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(save, model+"_epoch*"))
	best, bestTime := "", time.Time{}
	for _, d := range dirs {
		var st driver.State
		b, err := os.ReadFile(filepath.Join(d, driver.StateFile))
		if err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		if best == "" || st.Saved.After(bestTime) {
			best, bestTime = d, st.Saved
		}
	}
	return best
}
