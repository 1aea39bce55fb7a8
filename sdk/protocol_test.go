package sdk

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// call makes one RPC through the host-side client, opening a session
// first for the session's RPCs, and returns the client's error.
func call(t *testing.T, c *Client, rpc string) error {
	t.Helper()
	// A call the client sends without its own deadline fails at this
	// one (not a *TimeoutError) rather than hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch rpc {
	case "Describe":
		minor, models, err := c.Describe(ctx)
		if err == nil && (minor != ProtocolMinor || len(models) != 1 || models[0].Name != "H" || models[0].Config[0].Default != 3.0) {
			t.Errorf("Describe = %d, %+v", minor, models)
		}
		return err
	case "Open":
		_, res, err := c.Open(ctx, OpenRequest{Model: "H", Mode: ModeTrain, Config: Config{"TRAIN": {"epoch": 4}}, Device: "gpu", WorldSize: 1, Seed: 7})
		if err == nil && !reflect.DeepEqual(res, OpenResult{Notes: []string{"opened"}, Labels: []string{"x", "y"}, Epochs: 4}) {
			t.Errorf("Open = %+v", res)
		}
		return err
	}
	sess, _, err := c.Open(ctx, OpenRequest{Model: "H", Mode: ModeTrain, Config: Config{}, WorldSize: 1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	switch rpc {
	case "Run":
		var got []Event
		for e, err := range sess.Run(ctx, RunRequest{Phase: PhaseTrain}) {
			if err != nil {
				return err
			}
			got = append(got, e)
		}
		if len(got) != 2 || got[0].Start == nil || got[0].Start.Steps != 2 || got[1].Step == nil || got[1].Step.Metrics["loss"] != 0.5 {
			t.Errorf("Run events = %+v", got)
		}
		return nil
	case "Infer":
		out, err := sess.Infer(ctx, Tensor{Shape: []int64{1}, Data: []float32{0.25}})
		if err == nil && !reflect.DeepEqual(out, Tensor{Shape: []int64{1, 2}, Data: []float32{0.25, 0.75}}) {
			t.Errorf("Infer = %+v", out)
		}
		return err
	case "Decode":
		d, err := sess.Decode(ctx, "/uploads/1.mp4")
		want := Decoded{Input: Tensor{Shape: []int64{1, 2}, Data: []float32{0.5, -0.5}}, Frames: []int64{3, 9}, Mean: []float32{0.4, 0.5, 0.6}, Std: []float32{0.2, 0.2, 0.2}}
		if err == nil && !reflect.DeepEqual(d, want) {
			t.Errorf("Decode = %+v, want %+v", d, want)
		}
		return err
	case "Save":
		return sess.Save(ctx, t.TempDir())
	case "SaveState":
		res, err := sess.SaveState(ctx, t.TempDir())
		if err == nil && res.Position != nil {
			t.Errorf("SaveState of a session that is no StepResumer: %+v", res)
		}
		return err
	case "Load":
		res, err := sess.Load(ctx, t.TempDir(), UseWeights)
		if err == nil && res != (LoadResult{Loaded: 2, Ignored: 1}) {
			t.Errorf("Load = %+v", res)
		}
		return err
	case "Close":
		return sess.Close(ctx)
	}
	t.Fatalf("no RPC %s", rpc)
	return nil
}

// TestProtocol: every RPC, through the real server and client, with every
// way a plugin can answer: success, each error code, a plain error (only
// its first line reaches the user), a panic, and a hang (past the call's
// deadline; Run has none: the host cancels it).
func TestProtocol(t *testing.T) {
	// SaveState is Save with the plugin's train position (what the driver
	// calls); both must keep the call's deadline.
	rpcs := []string{"Describe", "Open", "Run", "Infer", "Decode", "Save", "SaveState", "Load", "Close"}
	outcomes := []struct {
		name  string
		err   error
		check func(t *testing.T, rpc string, err error)
	}{
		{"ok", nil, func(t *testing.T, rpc string, err error) {
			if err != nil {
				t.Errorf("%s: %v", rpc, err)
			}
		}},
		{"invalid argument", Errorf(CodeInvalidArgument, "TRAIN.epoch: want > 0"), wantCode(CodeInvalidArgument, "TRAIN.epoch: want > 0")},
		{"not found", Errorf(CodeNotFound, "no file x.list"), wantCode(CodeNotFound, "no file x.list")},
		{"failed precondition", Errorf(CodeFailedPrecondition, "built for the CPU only"), wantCode(CodeFailedPrecondition, "built for the CPU only")},
		{"unimplemented", Errorf(CodeUnimplemented, "no"), func(t *testing.T, rpc string, err error) {
			if err != ErrUnimplemented {
				t.Errorf("%s: %v, want ErrUnimplemented", rpc, err)
			}
		}},
		// The plugin's own failures name it and the call, on one line.
		{"plain error", errors.New("disk on fire\n\tat line 2"), wantCode(CodeInternal, "disk on fire")},
		{"panic", errPanic, func(t *testing.T, rpc string, err error) {
			call := strings.TrimSuffix(rpc, "State")
			want := "plugin zoo-plugin-harness failed during " + call + ": plugin panic: plugin bug in " + call
			if CodeOf(err) != CodeInternal || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v (code %v), want one line: %s...", rpc, err, CodeOf(err), want)
			}
		}},
		{"hang", errHang, func(t *testing.T, rpc string, err error) {
			var te *TimeoutError
			if rpc == "Run" {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run cancelled by the host: %v, want context.Canceled", err)
				}
				return
			}
			call := strings.TrimSuffix(rpc, "State") // SaveState is the Save RPC
			if !errors.As(err, &te) || te.Call != call || te.Plugin != "zoo-plugin-harness" {
				t.Fatalf("%s: %v, want a *TimeoutError naming the call", rpc, err)
			}
			// A session that hangs is unusable: the client kills the
			// plugin; Describe and Open have no session to lose.
			if want := rpc != "Describe" && rpc != "Open"; te.Killed != want {
				t.Errorf("%s: Killed = %v, want %v", rpc, te.Killed, want)
			}
			if !strings.Contains(err.Error(), "did not answer "+call+" within 300ms") {
				t.Errorf("%s: %q", rpc, err)
			}
		}},
	}
	for _, rpc := range rpcs {
		for _, oc := range outcomes {
			t.Run(rpc+"/"+oc.name, func(t *testing.T) {
				t.Parallel()
				p := &harnessProvider{fail: map[string]error{rpc: oc.err}}
				c := inProcess(t, p, ProtocolMinor, 300*time.Millisecond)
				var err error
				if rpc == "Run" && oc.err == errHang {
					err = cancelledRun(t, c)
				} else {
					err = call(t, c, rpc)
				}
				oc.check(t, rpc, err)
			})
		}
	}
}

func wantCode(code Code, msg string) func(*testing.T, string, error) {
	return func(t *testing.T, rpc string, err error) {
		t.Helper()
		want := msg
		if rpc == "Close" {
			want = "close: " + msg // the server says which call failed
		}
		if code == CodeInternal {
			want = "plugin zoo-plugin-harness failed during " + strings.TrimSuffix(rpc, "State") + ": " + want
		}
		if CodeOf(err) != code || err.Error() != want {
			t.Errorf("%s: %v (code %v), want %q (code %v)", rpc, err, CodeOf(err), want, code)
		}
	}
}

// cancelledRun starts a pass that hangs after its Start event and cancels
// it, as Ctrl-C does.
func cancelledRun(t *testing.T, c *Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess, _, err := c.Open(ctx, OpenRequest{Model: "H", Mode: ModeTrain, Config: Config{}, WorldSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for e, err := range sess.Run(ctx, RunRequest{Phase: PhaseTrain}) {
		if err != nil {
			return err
		}
		if e.Start == nil {
			t.Fatalf("event %+v before the hang, want Start", e)
		}
		cancel()
	}
	return errors.New("the pass ended without an error")
}

// TestProtocolRequests: what the host sends reaches the plugin whole
// (device, config, seed), an unknown session is NOT_FOUND, a session
// without Infer answers UNIMPLEMENTED, and the
// minor the plugin serves at is what Describe reports.
func TestProtocolRequests(t *testing.T) {
	ctx := context.Background()
	p := &harnessProvider{}
	c := inProcess(t, p, 2, time.Minute)
	if minor, _, err := c.Describe(ctx); err != nil || minor != 2 {
		t.Errorf("Describe of a minor-2 plugin: %d, %v", minor, err)
	}
	if err := call(t, c, "Open"); err != nil {
		t.Fatal(err)
	}
	if got := p.opened; got.Device != "gpu" || got.Seed != 7 || got.Config["TRAIN"]["epoch"] != 4.0 || got.Mode != ModeTrain {
		t.Errorf("the plugin got %+v", got)
	}
	ghost := &RemoteSession{c: c, id: "ghost"}
	if err := ghost.Save(ctx, t.TempDir()); CodeOf(err) != CodeNotFound || err.Error() != `no session "ghost"` {
		t.Errorf("Save of an unknown session: %v (code %v)", err, CodeOf(err))
	}

	plain := &harnessProvider{noInfer: true}
	c = inProcess(t, plain, ProtocolMinor, time.Minute)
	sess, _, err := c.Open(ctx, OpenRequest{Model: "H", Mode: ModeInfer, Config: Config{}, WorldSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Infer(ctx, Tensor{Shape: []int64{1}, Data: []float32{1}}); err != ErrUnimplemented {
		t.Errorf("Infer of a session without it: %v, want ErrUnimplemented", err)
	}
	if _, err := sess.Decode(ctx, "/uploads/1.mp4"); err != ErrUnimplemented {
		t.Errorf("Decode of a session without it: %v, want ErrUnimplemented", err)
	}

}

// TestDecodeWhileBusy: Decode does not wait for the session's turn, so the
// host can decode uploads while the session runs (here a pass that holds
// the turn until it is cancelled).
func TestDecodeWhileBusy(t *testing.T) {
	p := &harnessProvider{fail: map[string]error{"Run": errHang}, release: make(chan struct{})}
	c := inProcess(t, p, ProtocolMinor, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess, _, err := c.Open(ctx, OpenRequest{Model: "H", Mode: ModeInfer, Config: Config{}, WorldSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for e, err := range sess.Run(ctx, RunRequest{Phase: PhaseInfer}) {
		if err != nil || e.Start == nil {
			t.Fatalf("Run: %+v, %v; want Start first", e, err)
		}
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		d, err := sess.Decode(dctx, "/uploads/1.mp4")
		dcancel()
		if err != nil || len(d.Frames) != 2 {
			t.Errorf("Decode during a pass: %+v, %v", d, err)
		}
		break // ends the pass
	}
}
