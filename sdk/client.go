package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
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
	// StartTimeout bounds the wait for the handshake (default 20s).
	StartTimeout time.Duration
	// Env is added to the plugin's environment.
	Env []string
	// CallTimeout bounds Describe and Open, the calls a hung plugin would
	// otherwise block forever (default DefaultCallTimeout). Run, Save and
	// Load are bounded by the caller's context: a pass may take hours.
	CallTimeout time.Duration
}

// DefaultCallTimeout is LaunchConfig.CallTimeout's default: Open may build
// a ResNet-152 graph and read its 230 MB of parameters on a slow disk.
const DefaultCallTimeout = 2 * time.Minute

// TimeoutError reports a plugin that did not answer a call in time.
type TimeoutError struct {
	Plugin string
	Call   string
	After  time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("plugin %s did not answer %s within %v: it hangs, or is slower than ZOO_PLUGIN_TIMEOUT allows", e.Plugin, e.Call, e.After)
}

func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Client is a running plugin process.
type Client struct {
	name    string
	timeout time.Duration
	gp      *plugin.Client
	rpc     pb.PluginClient
	stderr  *tail
}

// Name is the plugin's executable name, e.g. zoo-plugin-tsm.
func (c *Client) Name() string { return c.name }

// Launch starts the plugin executable and completes the handshake.
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
	cmd := exec.Command(cfg.Path)
	cmd.Env = append(cmd.Environ(), cfg.Env...)
	st := &tail{max: 40}
	pc := &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{pluginKey: &grpcPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		// Stderr is the plugin's own fd 2 (where a Go panic lands);
		// SyncStderr is what it writes to os.Stderr after Serve, which
		// go-plugin forwards over gRPC. Keep both for crash reports.
		Stderr:       st,
		SyncStderr:   st,
		StartTimeout: timeout,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))},
	}
	if cfg.SHA256 != nil {
		pc.SecureConfig = &plugin.SecureConfig{Checksum: cfg.SHA256, Hash: sha256.New()}
	}
	gp := plugin.NewClient(pc)
	c := &Client{name: name, gp: gp, stderr: st, timeout: cfg.CallTimeout}
	if c.timeout <= 0 {
		c.timeout = DefaultCallTimeout
	}
	proto, err := gp.Client()
	if err != nil {
		gp.Kill()
		return nil, c.launchError(err)
	}
	raw, err := proto.Dispense(pluginKey)
	if err != nil {
		gp.Kill()
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
	case strings.Contains(msg, "Unrecognized remote plugin message: "):
		line := firstLine(msg[strings.Index(msg, "message: ")+len("message: "):])
		if line == "" {
			return &LaunchError{Plugin: c.name, Kind: "handshake", Msg: "not a zoo plugin: it printed no handshake line"}
		}
		return &LaunchError{Plugin: c.name, Kind: "handshake", Msg: fmt.Sprintf("not a zoo plugin: it printed %q instead of the handshake", line)}
	case strings.Contains(msg, "plugin exited before we could connect"),
		strings.Contains(msg, "timeout while waiting for plugin to start"):
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

// LaunchError says why a plugin could not be started. Kind is one of
// checksum, version, handshake, exec, start.
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
}

func (e *ExitError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("plugin %s exited", e.Plugin)
	}
	return fmt.Sprintf("plugin %s exited: %s", e.Plugin, e.Stderr)
}

// Kill stops the plugin process and waits for it. It is safe to call twice.
func (c *Client) Kill() { c.gp.Kill() }

// Exited reports whether the plugin process has ended.
func (c *Client) Exited() bool { return c.gp.Exited() }

// Describe asks the plugin for its models.
func (c *Client) Describe(ctx context.Context) (minor uint32, models []ModelInfo, err error) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.rpc.Describe(cctx, &pb.DescribeRequest{})
	if err != nil {
		return 0, nil, c.timedOut(ctx, cctx, "Describe", err)
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
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.rpc.Open(cctx, pr)
	if err != nil {
		return nil, OpenResult{}, c.timedOut(ctx, cctx, "Open", err)
	}
	return &RemoteSession{c: c, id: resp.GetSession()}, OpenResult{Notes: resp.GetNotes(), Labels: resp.GetLabels()}, nil
}

// RemoteSession is a session living in a plugin process.
type RemoteSession struct {
	c  *Client
	id string
}

// Run streams one pass's events. Breaking out of the loop cancels the pass.
func (s *RemoteSession) Run(ctx context.Context, req RunRequest) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
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
	resp, err := s.c.rpc.Infer(ctx, &pb.InferRequest{Session: s.id, Input: tensorToProto(in)})
	if err != nil {
		return Tensor{}, s.c.wrap(ctx, err)
	}
	out := tensorFromProto(resp.GetOutput())
	if err := out.Validate(); err != nil {
		return Tensor{}, fmt.Errorf("plugin %s returned a malformed tensor: %w", s.c.name, err)
	}
	return out, nil
}

// Save asks the plugin to write its state into dir.
func (s *RemoteSession) Save(ctx context.Context, dir string) error {
	_, err := s.c.rpc.Save(ctx, &pb.SaveRequest{Session: s.id, Dir: dir})
	return s.c.wrap(ctx, err)
}

// Load asks the plugin to read parameters from dir.
func (s *RemoteSession) Load(ctx context.Context, dir, kind string) (LoadResult, error) {
	resp, err := s.c.rpc.Load(ctx, &pb.LoadRequest{Session: s.id, Dir: dir, Kind: kind})
	if err != nil {
		return LoadResult{}, s.c.wrap(ctx, err)
	}
	return LoadResult{Loaded: int(resp.GetLoaded()), Ignored: int(resp.GetIgnored())}, nil
}

// Close ends the session.
func (s *RemoteSession) Close(ctx context.Context) error {
	_, err := s.c.rpc.Close(ctx, &pb.CloseRequest{Session: s.id})
	return s.c.wrap(ctx, err)
}

// timedOut is wrap for a call bounded by the client's timeout: when the
// deadline, not the caller, ended the call, a *TimeoutError.
func (c *Client) timedOut(ctx, cctx context.Context, call string, err error) error {
	if ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return &TimeoutError{Plugin: c.name, Call: call, After: c.timeout}
	}
	return c.wrap(ctx, err)
}

// wrap turns a gRPC error into an *Error, an *ExitError when the process
// died, or the context's error when the caller cancelled.
func (c *Client) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
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
			return &ExitError{Plugin: c.name, Stderr: c.stderr.summary()}
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
	return &Error{Code: code, Message: firstLine(st.Message())}
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
