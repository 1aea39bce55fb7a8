package sdk

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/zoo-ml/zoo/sdk/internal/pb"
)

// inProcess serves p, as a plugin built with minor would, to a host-side
// *Client over real gRPC in this process (go-plugin's TestPluginGRPCConn):
// the protocol harness. What the host sees (codes, messages, timeouts,
// conversions both ways) is the real client's and server's; only the
// process around them is missing, so the client's go-plugin Client is one
// never started (Exited is false, Kill does nothing).
func inProcess(t *testing.T, p *harnessProvider, minor uint32, timeout time.Duration) *Client {
	t.Helper()
	p.release = make(chan struct{})
	conn, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{pluginKey: &grpcPlugin{provider: p, minor: minor}})
	raw, err := conn.Dispense(pluginKey)
	if err != nil {
		t.Fatal(err)
	}
	const name = "zoo-plugin-harness"
	c := &Client{
		name: name, timeout: timeout, rpc: raw.(pb.PluginClient),
		gp:     plugin.NewClient(&plugin.ClientConfig{HandshakeConfig: Handshake, Logger: hclog.NewNullLogger()}),
		stderr: &tail{max: 40},
		stdout: &stdoutSink{plugin: name, logger: hclog.NewNullLogger()},
		logger: hclog.NewNullLogger(),
	}
	t.Cleanup(func() { conn.Close() })
	t.Cleanup(func() { close(p.release) }) // runs first: a hung Close returns
	return c
}

// Behaviours a harness call can be made to have, by the name of the call.
var (
	errHang  = errors.New("hang until the call's context ends")
	errPanic = errors.New("panic")
)

// harnessProvider answers each call as fail says: nil succeeds, errHang
// blocks until the call's context ends (Close, which has none, until the
// test ends), errPanic panics, anything else is returned.
type harnessProvider struct {
	fail    map[string]error
	noInfer bool // sessions without the Inferer capability
	release chan struct{}
	opened  OpenRequest
}

func (p *harnessProvider) act(ctx context.Context, call string) error {
	switch err := p.fail[call]; err {
	case errHang:
		select {
		case <-ctx.Done():
		case <-p.release:
		}
		return ctx.Err()
	case errPanic:
		panic("plugin bug in " + call)
	default:
		return err
	}
}

func (p *harnessProvider) Models(ctx context.Context) ([]ModelInfo, error) {
	if err := p.act(ctx, "Describe"); err != nil {
		return nil, err
	}
	return []ModelInfo{{Name: "H", Version: "1.0.0", Tasks: []string{ModeTrain, ModeInfer},
		Config: []ConfigKey{{Section: "TRAIN", Name: "epoch", Type: "int", Default: 3.0}}, Labels: []string{"a", "b"}}}, nil
}

func (p *harnessProvider) Open(ctx context.Context, req OpenRequest) (Session, OpenResult, error) {
	if err := p.act(ctx, "Open"); err != nil {
		return nil, OpenResult{}, err
	}
	p.opened = req
	epochs, _ := req.Config["TRAIN"]["epoch"].(float64)
	var sess Session = &harnessSession{p: p}
	if p.noInfer {
		sess = struct{ Session }{sess}
	}
	return sess, OpenResult{Notes: []string{"opened"}, Labels: []string{"x", "y"}, Epochs: int(epochs)}, nil
}

type harnessSession struct{ p *harnessProvider }

func (s *harnessSession) Run(ctx context.Context, req RunRequest, emit func(Event) error) error {
	if err := emit(Event{Start: &Start{Steps: 2, Samples: 4}}); err != nil {
		return err
	}
	if err := s.p.act(ctx, "Run"); err != nil {
		return err
	}
	return emit(Event{Step: &Step{Iter: 0, Samples: 2, Metrics: map[string]float64{"loss": 0.5}}})
}

func (s *harnessSession) Save(ctx context.Context, _ string) error {
	if err := s.p.act(ctx, "SaveState"); err != nil {
		return err
	}
	return s.p.act(ctx, "Save")
}

func (s *harnessSession) Load(ctx context.Context, _, _ string) (LoadResult, error) {
	if err := s.p.act(ctx, "Load"); err != nil {
		return LoadResult{}, err
	}
	return LoadResult{Loaded: 2, Ignored: 1}, nil
}

func (s *harnessSession) Infer(ctx context.Context, in Tensor) (Tensor, error) {
	if err := s.p.act(ctx, "Infer"); err != nil {
		return Tensor{}, err
	}
	return Tensor{Shape: []int64{1, 2}, Data: []float32{in.Data[0], 1 - in.Data[0]}}, nil
}

func (s *harnessSession) Decode(ctx context.Context, path string) (Decoded, error) {
	if err := s.p.act(ctx, "Decode"); err != nil {
		return Decoded{}, err
	}
	if path != "/uploads/1.mp4" {
		return Decoded{}, Errorf(CodeInvalidArgument, "got path %q", path)
	}
	return Decoded{Input: Tensor{Shape: []int64{1, 2}, Data: []float32{0.5, -0.5}}, Frames: []int64{3, 9}, Mean: []float32{0.4, 0.5, 0.6}, Std: []float32{0.2, 0.2, 0.2}}, nil
}

func (s *harnessSession) Close() error { return s.p.act(context.Background(), "Close") }
