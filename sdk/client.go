package sdk

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zoo-ml/zoo/sdk/internal/pb"
)

// LaunchConfig says how to start a plugin executable.
type LaunchConfig struct {
	Path string
	// SHA256, when set, is the pinned hash of the executable; a binary whose
	// hash differs is refused before it runs.
	SHA256 []byte
	// Logger receives the plugin's logs under the plugin's name.
	Logger hclog.Logger
	// StartTimeout bounds the wait for the handshake (default 20s; the
	// registry passes $ZOO_PLUGIN_TIMEOUT when set).
	StartTimeout time.Duration
	// Env is added to the plugin's environment.
	Env []string
	// CallTimeout bounds every call but Run (default DefaultCallTimeout):
	// Describe, Open, Save, Load, Infer, and Close up to CloseTimeout. A
	// plugin that misses it is killed. Run is bounded by the caller's
	// context: a pass may take hours.
	CallTimeout time.Duration
}

// CloseTimeout caps the wait for Close: a session that takes longer to
// free is stuck, and the process is killed anyway when the host stops it.
const CloseTimeout = 10 * time.Second

// DefaultCallTimeout is LaunchConfig.CallTimeout's default: Open may build
// a ResNet-152 graph and read its 230 MB of parameters on a slow disk.
const DefaultCallTimeout = 2 * time.Minute

// TimeoutError reports a plugin that did not answer a call in time.
type TimeoutError struct {
	Plugin string
	Call   string
	After  time.Duration
	Killed bool // the host killed the plugin for it
}

func (e *TimeoutError) Error() string {
	killed := ""
	if e.Killed {
		killed = "; zoo killed it"
	}
	return fmt.Sprintf("plugin %s did not answer %s within %v: it hangs, or is slower than ZOO_PLUGIN_TIMEOUT allows%s", e.Plugin, e.Call, e.After, killed)
}

func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Client is a running plugin process.
type Client struct {
	name    string
	timeout time.Duration
	gp      *plugin.Client
	proc    atomic.Pointer[process] // nil until go-plugin has made it
	rpc     pb.PluginClient
	stderr  *tail
	stdout  *stdoutSink
	killed  atomic.Pointer[string] // why the host killed the plugin
	call    atomic.Pointer[string] // the call in flight, for KilledError
	logger  hclog.Logger

	startTimeout time.Duration
}

// Name is the plugin's executable name, e.g. zoo-plugin-tsm.
func (c *Client) Name() string { return c.name }

// Launch starts the plugin executable and completes the handshake. The
// plugin runs in a process group of its own and, on Linux, dies with the
// host (see process.go); Kill, or KillAll, stops it.
func Launch(ctx context.Context, cfg LaunchConfig) (*Client, error) {
	name := filepath.Base(cfg.Path)
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	// Enough lines for a Go panic's stack to the plugin's own frames.
	st := &tail{max: 200}
	out := &stdoutSink{plugin: name, logger: logger}
	c := &Client{name: name, stderr: st, stdout: out, timeout: cfg.CallTimeout, logger: logger, startTimeout: timeout}
	if c.timeout <= 0 {
		c.timeout = DefaultCallTimeout
	}
	pin := ""
	if cfg.SHA256 != nil {
		pin = hex.EncodeToString(cfg.SHA256)
	}
	pc := &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{pluginKey: &grpcPlugin{}},
		RunnerFunc:       newProcess(c, cfg.Path, pin, cfg.Env, out),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		// Stderr is the plugin's own fd 2 (where a Go panic lands);
		// SyncStderr is what it writes to os.Stderr after Serve, which
		// go-plugin forwards over gRPC. Keep both for crash reports.
		// SyncStdout is os.Stdout after Serve: never shown, but counted.
		Stderr:       st,
		SyncStderr:   st,
		SyncStdout:   out,
		StartTimeout: timeout,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))},
	}
	gp := plugin.NewClient(pc)
	c.gp = gp
	track(c)
	proto, err := gp.Client()
	if err != nil {
		c.Kill()
		return nil, c.launchError(err)
	}
	raw, err := proto.Dispense(pluginKey)
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	c.rpc = raw.(pb.PluginClient)
	return c, nil
}

var versionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// launchError turns go-plugin's start errors into sentences a user can act on.
func (c *Client) launchError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return &LaunchError{Plugin: c.name, Kind: "checksum", Msg: "its sha256 no longer matches the pinned one"}
	case strings.Contains(msg, "incompatible API version"):
		got := "?"
		if m := versionRE.FindStringSubmatch(msg); m != nil {
			got = m[1]
		}
		return &LaunchError{Plugin: c.name, Kind: "version",
			Msg: fmt.Sprintf("it speaks zoo plugin protocol %s, this zoo speaks %d", got, ProtocolVersion)}
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		c.logStderr("did not start")
		return &LaunchError{Plugin: c.name, Kind: "timeout",
			Msg: fmt.Sprintf("did not complete the start-up handshake within %v: it hangs at start-up, or starts slower than ZOO_PLUGIN_TIMEOUT allows%s", c.startTimeout, c.said())}
	case strings.Contains(msg, "Unrecognized remote plugin message: "):
		line := firstLine(msg[strings.Index(msg, "message: ")+len("message: "):])
		c.logStderr("did not start")
		if line == "" || strings.HasPrefix(line, "Failed to read any lines from plugin's stdout") {
			if said := c.stderr.summary(); said != "" {
				return &LaunchError{Plugin: c.name, Kind: "handshake", Msg: "it exited before the handshake: " + said}
			}
		}
		if line == "" {
			return &LaunchError{Plugin: c.name, Kind: "handshake", Msg: "not a zoo plugin: it printed no handshake line"}
		}
		return &LaunchError{Plugin: c.name, Kind: "handshake", Msg: fmt.Sprintf("not a zoo plugin: it printed %q instead of the handshake%s", line, c.said())}
	case strings.Contains(msg, "plugin exited before we could connect"):
		c.logStderr("did not start")
		detail := c.stderr.summary()
		if detail == "" {
			detail = firstLine(msg)
		}
		return &LaunchError{Plugin: c.name, Kind: "handshake", Msg: "not a zoo plugin (no handshake): " + detail}
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"),
		strings.Contains(msg, "no such file"):
		return &LaunchError{Plugin: c.name, Kind: "exec", Msg: "cannot run: " + firstLine(msg)}
	}
	return &LaunchError{Plugin: c.name, Kind: "start", Msg: firstLine(msg)}
}

// said is the plugin's own last words on stderr, as a clause to append.
func (c *Client) said() string {
	if s := c.stderr.summary(); s != "" {
		return "; it said: " + s
	}
	return ""
}

// logStderr logs at debug level everything the plugin's stderr tail holds
// (a Go panic's stack with file:line, a Python traceback), which the one
// line of an error cannot carry.
func (c *Client) logStderr(what string) {
	c.stderr.mu.Lock()
	lines := strings.Join(c.stderr.lines, "\n")
	c.stderr.mu.Unlock()
	if lines != "" {
		c.logger.Debug(fmt.Sprintf("plugin %s %s; its last stderr lines:\n%s", c.name, what, lines))
	}
}

// LaunchError says why a plugin could not be started. Kind is one of
// checksum, version, handshake, timeout, exec, start.
type LaunchError struct {
	Plugin string
	Kind   string
	Msg    string
}

func (e *LaunchError) Error() string { return fmt.Sprintf("plugin %s: %s", e.Plugin, e.Msg) }

// ExitError is returned when the plugin process died during a call.
type ExitError struct {
	Plugin string
	Stderr string // the last meaningful stderr lines, joined
	Call   string // the call it died in, when known
}

func (e *ExitError) Error() string {
	during := ""
	if e.Call != "" {
		during = " (during " + e.Call + "; --log-level debug shows its last stderr lines)"
	}
	if e.Stderr == "" {
		return fmt.Sprintf("plugin %s exited%s", e.Plugin, during)
	}
	return fmt.Sprintf("plugin %s exited: %s%s", e.Plugin, e.Stderr, during)
}

// Kill stops the plugin process and waits for it. It is safe to call twice.
func (c *Client) Kill() {
	untrack(c)
	c.gp.Kill()
	if c.stdout.bytes.Load() > 0 {
		c.stdout.report()
		c.stdout.bytes.Store(0)
	}
}

// enter records the call in flight and returns its end.
func (c *Client) enter(call string) func() {
	c.call.Store(&call)
	return func() { c.call.Store(nil) }
}

// inCall is the call in flight, "" when none.
func (c *Client) inCall() string {
	if p := c.call.Load(); p != nil {
		return *p
	}
	return ""
}

// Exited reports whether the plugin process has ended.
func (c *Client) Exited() bool { return c.gp.Exited() }

// Describe asks the plugin for its models.
func (c *Client) Describe(ctx context.Context) (minor uint32, models []ModelInfo, err error) {
	resp, err := bounded(ctx, c, "Describe", func(cctx context.Context) (*pb.DescribeResponse, error) {
		return c.rpc.Describe(cctx, &pb.DescribeRequest{})
	})
	if err != nil {
		return 0, nil, err
	}
	for _, m := range resp.GetModels() {
		mi, err := modelFromProto(m)
		if err != nil {
			return 0, nil, fmt.Errorf("plugin %s: %w", c.name, err)
		}
		models = append(models, mi)
	}
	return resp.GetProtocolMinor(), models, nil
}

// Open starts a session on the plugin.
func (c *Client) Open(ctx context.Context, req OpenRequest) (*RemoteSession, OpenResult, error) {
	pr, err := openToProto(req)
	if err != nil {
		return nil, OpenResult{}, err
	}
	resp, err := bounded(ctx, c, "Open", func(cctx context.Context) (*pb.OpenResponse, error) {
		return c.rpc.Open(cctx, pr)
	})
	if err != nil {
		return nil, OpenResult{}, err
	}
	return &RemoteSession{c: c, id: resp.GetSession()}, OpenResult{Notes: resp.GetNotes(), Labels: resp.GetLabels(), Epochs: int(resp.GetEpochs())}, nil
}

// RemoteSession is a session living in a plugin process.
type RemoteSession struct {
	c  *Client
	id string
}

// Run streams one pass's events. Breaking out of the loop cancels the pass.
func (s *RemoteSession) Run(ctx context.Context, req RunRequest) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		defer s.c.enter("Run")()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := s.c.rpc.Run(ctx, runToProto(s.id, req))
		if err != nil {
			yield(Event{}, s.c.wrap(ctx, err))
			return
		}
		for {
			pe, err := stream.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Event{}, s.c.wrap(ctx, err))
				return
			}
			e, err := eventFromProto(pe)
			if err != nil {
				yield(Event{}, fmt.Errorf("plugin %s: %w", s.c.name, err))
				return
			}
			if e == (Event{}) {
				continue // a kind this host does not know
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Infer runs the model on a tensor; ErrUnimplemented if the plugin cannot.
func (s *RemoteSession) Infer(ctx context.Context, in Tensor) (Tensor, error) {
	resp, err := bounded(ctx, s.c, "Infer", func(cctx context.Context) (*pb.InferResponse, error) {
		return s.c.rpc.Infer(cctx, &pb.InferRequest{Session: s.id, Input: tensorToProto(in)})
	})
	if err != nil {
		return Tensor{}, err
	}
	out := tensorFromProto(resp.GetOutput())
	if err := out.Validate(); err != nil {
		return Tensor{}, fmt.Errorf("plugin %s returned a malformed tensor: %w", s.c.name, err)
	}
	return out, nil
}

// Decode reads a file with the session's infer reader, without running the
// model; ErrUnimplemented if the plugin cannot (a plugin older than
// minor 4). It may be called while another call of the session runs.
func (s *RemoteSession) Decode(ctx context.Context, path string) (Decoded, error) {
	// Concurrent with Infer, so the call named in an error may be either.
	resp, err := bounded(ctx, s.c, "Decode", func(cctx context.Context) (*pb.DecodeResponse, error) {
		return s.c.rpc.Decode(cctx, &pb.DecodeRequest{Session: s.id, Path: path})
	})
	if err != nil {
		return Decoded{}, err
	}
	d := Decoded{Input: tensorFromProto(resp.GetInput()), Frames: resp.GetFrames(), Mean: resp.GetMean(), Std: resp.GetStd()}
	if err := d.Input.Validate(); err != nil || len(d.Input.Shape) < 2 {
		return Decoded{}, fmt.Errorf("plugin %s decoded %s into a malformed tensor %v: %v", s.c.name, path, d.Input.Shape, err)
	}
	return d, nil
}

// Save asks the plugin to write its state into dir. It waits for a Run the
// host cancelled to reach its step boundary (the sdk's server serialises a
// session's calls). It is SaveState without the train position.
func (s *RemoteSession) Save(ctx context.Context, dir string) error {
	_, err := s.SaveState(ctx, dir)
	return err
}

// Load asks the plugin to read parameters from dir.
func (s *RemoteSession) Load(ctx context.Context, dir, kind string) (LoadResult, error) {
	resp, err := bounded(ctx, s.c, "Load", func(cctx context.Context) (*pb.LoadResponse, error) {
		return s.c.rpc.Load(cctx, &pb.LoadRequest{Session: s.id, Dir: dir, Kind: kind})
	})
	if err != nil {
		return LoadResult{}, err
	}
	return LoadResult{Loaded: int(resp.GetLoaded()), Ignored: int(resp.GetIgnored())}, nil
}

// Close ends the session, waiting at most CloseTimeout (or the call
// timeout, when shorter).
func (s *RemoteSession) Close(ctx context.Context) error {
	if s.c.killed.Load() != nil {
		return s.c.wrap(ctx, errors.New("killed"))
	}
	defer s.c.enter("Close")()
	d := min(s.c.timeout, CloseTimeout)
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := s.c.rpc.Close(cctx, &pb.CloseRequest{Session: s.id})
	if err != nil && missed(ctx, cctx, err) {
		s.c.abort("after missing its deadline")
		return &TimeoutError{Plugin: s.c.name, Call: "Close", After: d, Killed: true}
	}
	return s.c.wrap(ctx, err)
}

// bounded makes call f under the client's call timeout, recorded as the
// call in flight, its error through timedOut.
func bounded[T any](ctx context.Context, c *Client, call string, f func(context.Context) (T, error)) (T, error) {
	defer c.enter(call)()
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	r, err := f(cctx)
	if err != nil {
		return r, c.timedOut(ctx, cctx, call, err)
	}
	return r, nil
}

// timedOut is wrap for a call bounded by the client's timeout: when the
// deadline, not the caller, ended the call, a *TimeoutError.
func (c *Client) timedOut(ctx, cctx context.Context, call string, err error) error {
	if err != nil && missed(ctx, cctx, err) {
		// A session call that hangs leaves the session unusable; a plugin
		// that hangs in Describe or Open has no session yet and is stopped
		// by the caller.
		kill := call != "Describe" && call != "Open"
		if kill {
			c.abort("after missing its deadline")
		}
		return &TimeoutError{Plugin: c.name, Call: call, After: c.timeout, Killed: kill}
	}
	return c.wrap(ctx, err)
}

// missed reports whether a call's own deadline, not its caller, ended it.
// gRPC may fail the call with DEADLINE_EXCEEDED a moment before cctx's
// timer fires, so its code counts too.
func missed(ctx, cctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return errors.Is(cctx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
}

// wrap turns a gRPC error into an *Error, an *ExitError when the process
// died, or the context's error when the caller cancelled.
func (c *Client) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if why := c.killed.Load(); why != nil {
		return &KilledError{Plugin: c.name, Call: c.inCall(), Reason: *why}
	}
	st, _ := status.FromError(err)
	if ctx.Err() != nil && (st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded) {
		return ctx.Err()
	}
	if st.Code() == codes.Unavailable || st.Code() == codes.Canceled || st.Code() == codes.Internal && c.gp.Exited() {
		// The transport broke: give the process a moment to be reaped, so
		// that a crash is reported as a crash.
		for i := 0; i < 50 && !c.gp.Exited(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if c.gp.Exited() {
			call := c.inCall()
			c.logStderr("exited during " + call)
			return &ExitError{Plugin: c.name, Stderr: c.stderr.summary(), Call: call}
		}
	}
	code := CodeInternal
	switch st.Code() {
	case codes.InvalidArgument:
		code = CodeInvalidArgument
	case codes.NotFound:
		code = CodeNotFound
	case codes.FailedPrecondition:
		code = CodeFailedPrecondition
	case codes.Unimplemented:
		return ErrUnimplemented
	case codes.DeadlineExceeded:
		return fmt.Errorf("plugin %s did not answer in time: %w", c.name, context.DeadlineExceeded)
	}
	msg := st.Message()
	if code == CodeInternal {
		// The plugin's own failure, not the user's: name the plugin and the
		// call, and keep the rest (a recovered panic's stack) for debug.
		call := c.inCall()
		if call == "" {
			call = "a call"
		}
		if rest := strings.TrimSpace(msg); strings.Contains(rest, "\n") {
			c.logger.Debug(fmt.Sprintf("plugin %s failed during %s:\n%s", c.name, call, rest))
		}
		return &Error{Code: code, Message: fmt.Sprintf("plugin %s failed during %s: %s", c.name, call, firstLine(msg))}
	}
	return &Error{Code: code, Message: firstLine(msg)}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// tail keeps the last lines a plugin wrote to stderr, for crash reports.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			t.part = append(t.part, b)
			continue
		}
		t.lines = append(t.lines, string(t.part))
		t.part = t.part[:0]
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
	}
	return len(p), nil
}

// summary picks what explains a death: a Go panic's first line if there is
// one, else the last three non-empty lines, joined on one line.
func (t *tail) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keep []string
	for _, l := range t.lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return strings.TrimSpace(l)
		}
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "{") {
			// An hclog JSON line: keep the message of a warning or error.
			var entry struct {
				Level   string `json:"@level"`
				Message string `json:"@message"`
			}
			if json.Unmarshal([]byte(l), &entry) != nil || (entry.Level != "error" && entry.Level != "warn") {
				continue
			}
			l = entry.Message
		}
		if l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > 3 {
		keep = keep[len(keep)-3:]
	}
	return strings.Join(keep, " | ")
}
