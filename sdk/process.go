package sdk

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/zoo-ml/zoo/internal/fsx"
)

// process is go-plugin's runner for a plugin executable, in place of its
// own: it starts the plugin so that it cannot outlive the host (a
// parent-death signal on Linux, its own process group everywhere), kills
// the whole group, and counts what the plugin writes to its raw stdout
// after the handshake line.
type process struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser
	done   chan struct{} // closed once the process is reaped
	// socketDir is go-plugin's, removed here when the start fails (go-plugin
	// only removes it after a process ran).
	socketDir string

	mu  sync.Mutex
	pid int
}

var _ runner.Runner = (*process)(nil)

// newProcess is a plugin.ClientConfig.RunnerFunc: spec carries the
// environment go-plugin prepared (magic cookie, ports, socket dir).
func newProcess(c *Client, path, wantSHA string, extraEnv []string, out *stdoutSink) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(_ hclog.Logger, spec *exec.Cmd, socketDir string) (r runner.Runner, err error) {
		defer func() {
			if err != nil {
				os.RemoveAll(socketDir) // go-plugin forgets it when no process started
			}
		}()
		if wantSHA != "" {
			// go-plugin checks SecureConfig against Cmd.Path, which a
			// RunnerFunc leaves empty: check the pin here instead.
			got, err := fileSHA256(path)
			if err != nil {
				return nil, err
			}
			if got != wantSHA {
				return nil, plugin.ErrChecksumsDoNotMatch
			}
		}
		// go-plugin's own runner logs this line; tests count plugin
		// starts by it (cmd/zoo's TestRunStartsOnePlugin).
		c.logger.Debug("starting plugin", "path", path)
		cmd := exec.Command(path)
		cmd.Env = append(spec.Env, extraEnv...)
		// No stdin: in a process group of its own the plugin would be
		// stopped (SIGTTIN) by reading the terminal, and it has nothing to
		// read there.
		cmd.SysProcAttr = sysProcAttr()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		p := &process{cmd: cmd, stdout: &handshakeReader{r: stdout, sink: out}, stderr: stderr, done: make(chan struct{}), socketDir: socketDir}
		c.proc.Store(p)
		return p, nil
	}
}

func fileSHA256(path string) (string, error) {
	sum, err := fsx.SHA256(path)
	return hex.EncodeToString(sum), err
}

// Start forks the plugin from a goroutine locked to its OS thread, which
// stays parked until the plugin is reaped. Linux sends the parent-death
// signal when the thread that forked exits, not the process; the Go
// runtime ends a thread when a goroutine locked to it exits, so without
// this a goroutine elsewhere in the host that locks its thread and returns
// could take the plugin down with it.
func (p *process) Start(context.Context) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := p.cmd.Start()
		if err == nil {
			p.mu.Lock()
			p.pid = p.cmd.Process.Pid
			p.mu.Unlock()
		}
		errc <- err
		if err == nil {
			<-p.done
		} else {
			os.RemoveAll(p.socketDir)
		}
		runtime.UnlockOSThread()
	}()
	return <-errc
}

func (p *process) Wait(context.Context) error {
	err := p.cmd.Wait()
	p.mu.Lock()
	close(p.done)
	p.mu.Unlock()
	return err
}

// Kill sends SIGKILL to the plugin's process group (so that the decoders
// and other children it started go too) and to the plugin itself.
func (p *process) Kill(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return nil // reaped: its pid may belong to another process now
	default:
	}
	if p.pid == 0 {
		return nil
	}
	killGroup(p.pid)
	if err := p.cmd.Process.Kill(); err != nil && err != os.ErrProcessDone {
		return err
	}
	return nil
}

func (p *process) Diagnose(context.Context) string { return "" }
func (p *process) Stdout() io.ReadCloser           { return p.stdout }
func (p *process) Stderr() io.ReadCloser           { return p.stderr }
func (p *process) Name() string                    { return p.cmd.Path }

func (p *process) ID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 {
		return ""
	}
	return fmt.Sprint(p.pid)
}

func (p *process) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (p *process) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// stdoutSink counts what a plugin writes to stdout after the handshake:
// zoo cannot show it (stdout is the protocol's), so it says so once, and
// how much was lost when the plugin stops.
type stdoutSink struct {
	plugin string
	logger hclog.Logger
	once   sync.Once
	bytes  atomic.Int64
	lines  atomic.Int64

	mu   sync.Mutex
	part []byte // the line being written, for the debug log
}

func (s *stdoutSink) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.bytes.Add(int64(len(p)))
	s.mu.Lock()
	for _, b := range p {
		if b != '\n' {
			if len(s.part) < 4096 {
				s.part = append(s.part, b)
			}
			continue
		}
		// The first lines reach the debug log: a print left in by a
		// plugin's author is what they are looking for.
		if s.lines.Add(1) <= floodLines {
			s.logger.Debug(fmt.Sprintf("plugin %s stdout: %s", s.plugin, s.part))
		}
		s.part = s.part[:0]
	}
	s.mu.Unlock()
	s.once.Do(func() {
		s.logger.Warn(fmt.Sprintf("plugin %s writes to stdout, which zoo reserves for the handshake and discards: a plugin must log to stderr", s.plugin))
	})
	return len(p), nil
}

// floodLines is where stray output becomes a flood: a debugging print or
// two is a slip, hundreds of lines are a plugin logging to the wrong place.
const floodLines = 100

// report logs the total, when there was any; called when the plugin stops.
func (s *stdoutSink) report() {
	n, lines := s.bytes.Load(), s.lines.Load()
	if n == 0 {
		return
	}
	what := "wrote to stdout"
	if lines >= floodLines {
		what = "flooded stdout"
	}
	s.logger.Warn(fmt.Sprintf("plugin %s %s: %d lines (%d bytes) after the handshake, discarded; a plugin must log to stderr", s.plugin, what, lines, n))
}

// handshakeReader passes the plugin's raw stdout to go-plugin, which reads
// the handshake line and drops the rest; bytes after the first line also
// go to the sink.
type handshakeReader struct {
	r    io.ReadCloser
	sink *stdoutSink
	past bool // the handshake's newline was read
}

func (h *handshakeReader) Read(b []byte) (int, error) {
	n, err := h.r.Read(b)
	chunk := b[:n]
	if !h.past {
		for i, c := range chunk {
			if c == '\n' {
				h.past = true
				chunk = chunk[i+1:]
				break
			}
		}
		if !h.past {
			chunk = nil
		}
	}
	if len(chunk) > 0 {
		h.sink.Write(chunk)
	}
	return n, err
}

func (h *handshakeReader) Close() error { return h.r.Close() }

// live holds the clients KillAll would kill.
var live struct {
	sync.Mutex
	clients map[*Client]struct{}
}

func track(c *Client) {
	live.Lock()
	defer live.Unlock()
	if live.clients == nil {
		live.clients = map[*Client]struct{}{}
	}
	live.clients[c] = struct{}{}
}

func untrack(c *Client) {
	live.Lock()
	defer live.Unlock()
	delete(live.clients, c)
}

// KillAll kills every plugin process this host started and has not
// stopped yet, at once, without waiting for the calls in flight: each of
// them then fails with a *KilledError saying why (reason, e.g. "after a
// second SIGINT"). It is for a host that must stop now; it returns the names of
// the plugins it killed.
func KillAll(reason string) []string {
	live.Lock()
	cs := make([]*Client, 0, len(live.clients))
	for c := range live.clients {
		cs = append(cs, c)
	}
	live.Unlock()
	var names []string
	for _, c := range cs {
		if c.abort(reason) {
			names = append(names, c.name)
		}
	}
	return names
}

// KilledError is returned by a call to a plugin that the host killed while
// the call was in flight or before it.
type KilledError struct {
	Plugin string
	Call   string // the call in flight, "" if none
	Reason string
}

func (e *KilledError) Error() string {
	if e.Call == "" {
		return fmt.Sprintf("plugin %s was killed %s", e.Plugin, e.Reason)
	}
	return fmt.Sprintf("plugin %s was killed %s: it had not finished %s", e.Plugin, e.Reason, e.Call)
}

// abort kills the plugin's processes now; false if it had already stopped.
func (c *Client) abort(reason string) bool {
	if c.gp.Exited() {
		return false
	}
	c.killed.CompareAndSwap(nil, &reason)
	if p := c.proc.Load(); p != nil {
		p.Kill(context.Background())
	}
	return true
}
