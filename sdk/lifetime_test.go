package sdk

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/zoo-ml/zoo/sdk/internal/pb"
)

// slowSession's Run takes a while to notice cancellation, as a model in
// the middle of a step does; it records the order of what happened.
type slowSession struct {
	mu  sync.Mutex
	log []string
}

func (s *slowSession) note(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, e)
}

func (s *slowSession) Run(ctx context.Context, _ RunRequest, emit func(Event) error) error {
	emit(Event{Start: &Start{Steps: 1}})
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond) // the step in flight
	s.note("run returned")
	return ctx.Err()
}

func (s *slowSession) Save(context.Context, string) error { s.note("save"); return nil }
func (s *slowSession) Load(context.Context, string, string) (LoadResult, error) {
	return LoadResult{}, nil
}
func (s *slowSession) Close() error { s.note("close"); return nil }

type slowProvider struct{ s *slowSession }

func (slowProvider) Models(context.Context) ([]ModelInfo, error) { return nil, nil }
func (p slowProvider) Open(context.Context, OpenRequest) (Session, OpenResult, error) {
	return p.s, OpenResult{}, nil
}

// TestSaveWaitsForCancelledRun: the host calls Save as soon as it has
// cancelled Run, and the server makes Save wait until Run has returned, so
// that no model is saved in the middle of a step.
func TestSaveWaitsForCancelledRun(t *testing.T) {
	sess := &slowSession{}
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{pluginKey: &grpcPlugin{provider: slowProvider{sess}}})
	raw, err := client.Dispense(pluginKey)
	if err != nil {
		t.Fatal(err)
	}
	rpc := raw.(pb.PluginClient)
	ctx := context.Background()
	open, err := rpc.Open(ctx, &pb.OpenRequest{Model: "Slow", Mode: ModeTrain, ConfigJson: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	stream, err := rpc.Run(rctx, &pb.RunRequest{Session: open.GetSession(), Phase: PhaseTrain})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := rpc.Save(ctx, &pb.SaveRequest{Session: open.GetSession(), Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if _, err := rpc.Close(ctx, &pb.CloseRequest{Session: open.GetSession()}); err != nil {
		t.Fatal(err)
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if got := strings.Join(sess.log, ", "); got != "run returned, save, close" {
		t.Errorf("order: %s, want run returned, save, close", got)
	}
}

// TestStdoutAfterHandshake: the raw stdout's first line is the handshake;
// what follows is counted and reported as a flood, naming the plugin.
func TestStdoutAfterHandshake(t *testing.T) {
	var logs strings.Builder
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	sink := &stdoutSink{plugin: "zoo-plugin-x", logger: logger}
	r := &handshakeReader{r: nopCloser{strings.NewReader("1|1|unix|/tmp/s|grpc|\n" + strings.Repeat("noise\n", 150))}, sink: sink}
	buf := make([]byte, 7) // small reads: the handshake spans several
	var got strings.Builder
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.HasPrefix(got.String(), "1|1|unix|/tmp/s|grpc|\n") {
		t.Errorf("the handshake did not pass through: %q", got.String()[:30])
	}
	sink.Write([]byte("from os.Stdout\n"))
	sink.report()
	for _, want := range []string{
		"plugin zoo-plugin-x writes to stdout, which zoo reserves for the handshake and discards",
		"plugin zoo-plugin-x flooded stdout: 151 lines (915 bytes) after the handshake, discarded",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Count(logs.String(), "writes to stdout") != 1 {
		t.Errorf("the first warning is not said once:\n%s", logs.String())
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }
