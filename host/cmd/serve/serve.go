// Package serve implements `zoo serve MODEL...`: it resolves each model's
// config and weights as `zoo run MODEL infer` does, starts its plugin and
// opens one infer session, and serves them over HTTP with host/serve until
// SIGTERM or Ctrl-C, when it drains the requests in flight and exits 0.
package serve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/zoo-ml/zoo/host/cmd/run"
	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/config"
	"github.com/zoo-ml/zoo/host/driver"
	"github.com/zoo-ml/zoo/host/serve"
	"github.com/zoo-ml/zoo/registry"
	"github.com/zoo-ml/zoo/sdk"
)

// Options are `zoo serve`'s inputs.
type Options struct {
	F      *cmdutil.Factory
	Models []string

	Addr     string
	Config   string
	SaveDir  string
	Weights  string
	Set      []string
	UseGPU   bool
	Seed     int64
	MaxBatch int
	Window   time.Duration
	MaxBody  int64
	Timeout  time.Duration
	Drain    time.Duration
	Decoders int
	GRPCAddr string
	Version  string
}

// NewCmdServe returns the command; runF replaces serveRun in tests.
func NewCmdServe(f *cmdutil.Factory, version string, runF func(*Options) error) *cobra.Command {
	opts := &Options{F: f, Version: version}
	cmd := &cobra.Command{
		Use:   "serve MODEL [MODEL...]",
		Short: "Serve models over HTTP (Open Inference Protocol v2)",
		Long: `serve keeps each model's plugin up with its graph built once and answers
HTTP requests on the Open Inference Protocol v2 (KServe, Triton):

  GET  /v2/health/live, /v2/health/ready, /v2/models/MODEL, /v2/models/MODEL/ready
  POST /v2/models/MODEL/infer      v2 JSON tensors: input "clip" FP32 [N, seg_num, 3, H, W]
                                   (an image model, ResNet: [N, 3, H, W])
  POST /v2/models/MODEL/classify   a video file's bytes (Content-Type video/*), ?topk=K,
                                   &frames=1 adds the frames the model saw (PNGs)
  GET  /metrics                    Prometheus text format
  GET  /                           a demo page

With --grpc-addr, the same models answer inference.GRPCInferenceService
(ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata,
ModelInfer) over gRPC, through the same batches.

Weights are resolved as ` + "`zoo run MODEL infer`" + ` resolves them: --weights, else
with --config the published set from the store, else the newest checkpoint
of the latest train run in --save_dir. Requests that arrive within --window
of each other run as one batch of at most --max-batch clips. SIGTERM or
Ctrl-C stops accepting, finishes the requests in flight and exits 0.
See docs/serve.md.`,
		Example: `  zoo serve TSM
  zoo serve TSM --config configs/tsm.txt --weights checkpoints/TSM_epoch64 --addr 0.0.0.0:8080
  zoo serve TSM --grpc-addr 127.0.0.1:8081
  curl -H 'Content-Type: video/mp4' --data-binary @video.mp4 'localhost:8080/v2/models/TSM/classify?topk=5'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return cmdutil.FlagErrorf("serve needs at least one model, e.g. `zoo serve TSM`")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Models = args
			if err := opts.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return serveRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "HOST:PORT to listen on (port 0: any free port, printed at start)")
	fl.StringVar(&opts.Config, "config", "", "Paddle INI (.txt) or YAML config, for every model served; default: each model's built-in job")
	fl.StringVar(&opts.SaveDir, "save-dir", "checkpoints", "where the built-in job's checkpoints are (as zoo run)")
	fl.StringVar(&opts.Weights, "weights", "", "the weights directory (one model only)")
	fl.StringArrayVar(&opts.Set, "set", nil, "override any config key: SECTION.key=value (repeatable)")
	fl.BoolVar(&opts.UseGPU, "use-gpu", false, "run on an NVIDIA GPU (needs a CUDA build of the plugin)")
	fl.Int64Var(&opts.Seed, "seed", 1, "seed given to the session (infer draws nothing at random)")
	fl.IntVar(&opts.MaxBatch, "max-batch", 0, "most clips per forward pass; sets INFER.batch_size (default: the config's)")
	fl.DurationVar(&opts.Window, "window", serve.DefaultWindow, "how long a batch waits for more requests after its first")
	fl.Int64Var(&opts.MaxBody, "max-body", serve.DefaultMaxBody, "largest request body in bytes (413 above)")
	fl.DurationVar(&opts.Timeout, "timeout", serve.DefaultTimeout, "per-request deadline, queueing included (504 past it)")
	fl.DurationVar(&opts.Drain, "drain", 30*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	fl.StringVar(&opts.GRPCAddr, "grpc-addr", "", "HOST:PORT to answer the same protocol over gRPC (inference.GRPCInferenceService) on; off unless given")
	fl.IntVar(&opts.Decoders, "decoders", serve.DefaultDecoders, "uploads decoded at once per model, while the previous batch runs; 0: none, uploads are read by infer passes (the path of plugins without Decode)")
	return cmd
}

func (o *Options) validate(cmd *cobra.Command) error {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return cmdutil.FlagErrorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8080", o.Addr)
	}
	if o.GRPCAddr != "" {
		if _, _, err := net.SplitHostPort(o.GRPCAddr); err != nil {
			return cmdutil.FlagErrorf("--grpc-addr %q: want HOST:PORT, e.g. 127.0.0.1:8081", o.GRPCAddr)
		}
	}
	if o.Weights != "" && len(o.Models) > 1 {
		return cmdutil.FlagErrorf("--weights %s: serve one model with it (got %s)", o.Weights, strings.Join(o.Models, ", "))
	}
	if cmd.Flags().Changed("max-batch") && o.MaxBatch < 1 {
		return cmdutil.FlagErrorf("--max-batch %d: must be at least 1", o.MaxBatch)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"window", o.Window}, {"timeout", o.Timeout}, {"drain", o.Drain}} {
		if d.v <= 0 && !(d.flag == "window" && d.v == 0) {
			return cmdutil.FlagErrorf("--%s %v: must be positive", d.flag, d.v)
		}
	}
	if o.Decoders < 0 {
		return cmdutil.FlagErrorf("--decoders %d: must be 0 (off) or more", o.Decoders)
	}
	if o.MaxBody < 1 {
		return cmdutil.FlagErrorf("--max-body %d: must be at least 1 byte", o.MaxBody)
	}
	if o.Weights != "" {
		if fi, err := os.Stat(o.Weights); err != nil || !fi.IsDir() {
			return cmdutil.FlagErrorf("--weights %s: no such directory", o.Weights)
		}
	}
	if o.Config != "" {
		if fi, err := os.Stat(o.Config); err != nil || fi.IsDir() {
			return cmdutil.FlagErrorf("--config %s: no such file", o.Config)
		}
	}
	return nil
}

// session is a plugin's infer session (Infer, Run and Decode are its own)
// and the plugin process under it.
type session struct {
	*sdk.RemoteSession
	c *sdk.Client
}

func (s *session) Exited() bool { return s.c.Exited() }

func (s *session) Close() {
	if !s.c.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.RemoteSession.Close(ctx)
		cancel()
	}
	s.c.Kill()
}

func serveRun(ctx context.Context, o *Options) error {
	f := o.F
	reg, err := f.Registry()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "zoo-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Plugins outlive the signal that starts the drain: they answer the
	// requests in flight, and Close stops them.
	pctx := context.WithoutCancel(ctx)
	reqLog := hclog.New(&hclog.LoggerOptions{Name: "zoo.serve", Level: hclog.Info, Output: f.IO.ErrOut, JSONFormat: true})
	srv := serve.New(serve.Options{Window: o.Window, MaxBody: o.MaxBody, Timeout: o.Timeout, Decoders: o.Decoders, NoDecode: o.Decoders == 0, Version: o.Version}, reqLog)
	defer srv.Close()
	var models []*registry.Model
	defer func() {
		for _, m := range models {
			m.Release()
		}
	}()
	for _, name := range o.Models {
		m, err := f.FindModelToRun(ctx, name)
		if err != nil {
			return err
		}
		models = append(models, &m)
		sm, sess, res, err := prepare(pctx, o, reg, &m, filepath.Join(tmp, m.Info.Name))
		if err != nil {
			return err
		}
		for _, n := range res.Notes {
			fmt.Fprintf(f.IO.ErrOut, "%s: %s\n", m.Info.Name, n)
		}
		if err := srv.Add(sm, sess, res.Labels); err != nil {
			sess.Close()
			return cmdutil.FlagErrorf("%v", err)
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", o.Addr, err)
	}
	// ReadTimeout bounds a slow upload, which the request deadline (a
	// context) cannot interrupt.
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: o.Timeout}
	served := make(chan error, 2)
	go func() { served <- hs.Serve(ln) }()
	var gs *grpc.Server
	if o.GRPCAddr != "" {
		gln, err := net.Listen("tcp", o.GRPCAddr)
		if err != nil {
			hs.Close()
			return fmt.Errorf("--grpc-addr %s: %w", o.GRPCAddr, err)
		}
		gs = srv.GRPC()
		go func() { served <- gs.Serve(gln) }()
		fmt.Fprintf(f.IO.ErrOut, "serving %s over gRPC on %s\n", strings.Join(o.Models, ", "), gln.Addr())
	}
	fmt.Fprintf(f.IO.ErrOut, "serving %s on http://%s (Ctrl-C or SIGTERM stops)\n", strings.Join(o.Models, ", "), ln.Addr())
	select {
	case err := <-served:
		hs.Close()
		if gs != nil {
			gs.Stop()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintf(f.IO.ErrOut, "stopping: finishing the requests in flight (at most %v)\n", o.Drain)
	srv.Drain()
	dctx, cancel := context.WithTimeout(context.Background(), o.Drain)
	defer cancel()
	// HTTP and gRPC drain together, within the one deadline.
	grpcDone := make(chan struct{})
	if gs != nil {
		go func() {
			gs.GracefulStop()
			close(grpcDone)
		}()
	}
	herr := hs.Shutdown(dctx)
	if gs != nil {
		select {
		case <-grpcDone:
		case <-dctx.Done():
			select {
			case <-grpcDone:
			default:
				gs.Stop()
				herr = dctx.Err()
			}
		}
	}
	if herr != nil {
		hs.Close()
		return fmt.Errorf("requests still running after --drain %v were cut off", o.Drain)
	}
	fmt.Fprintln(f.IO.ErrOut, "stopped")
	return nil
}

// prepare builds a model's infer config and weights as `zoo run MODEL
// infer` would, starts its plugin and opens the session.
func prepare(ctx context.Context, o *Options, reg *registry.Registry, m *registry.Model, dir string) (serve.Model, serve.Session, sdk.OpenResult, error) {
	name := m.Info.Name
	var none sdk.OpenResult
	if !m.Info.HasTask(sdk.ModeInfer) {
		return serve.Model{}, nil, none, cmdutil.FlagErrorf("model %s does not infer (it supports %s)", name, strings.Join(m.Info.Tasks, ", "))
	}
	ro := &run.Options{F: o.F, Model: name, Mode: sdk.ModeInfer, Config: o.Config, SaveDir: o.SaveDir,
		Weights: o.Weights, UseGPU: o.UseGPU, Seed: o.Seed, Set: o.Set}
	if o.MaxBatch > 0 {
		ro.Set = append(append([]string(nil), o.Set...), "INFER.batch_size="+strconv.Itoa(o.MaxBatch))
	}
	videos := ""
	if slices.ContainsFunc(m.Info.Config, func(k sdk.ConfigKey) bool { return k.Section == "INFER" && k.Name == "video_path" }) {
		// The plugin's own reader classifies uploads: each batch of them
		// is moved into this private directory and read by one infer pass.
		videos = filepath.Join(dir, "videos")
		if err := os.MkdirAll(videos, 0o700); err != nil {
			return serve.Model{}, nil, none, err
		}
	}
	// The job (the built-in one and its checkpoint, or the published one)
	// and the weights are chosen as `zoo run MODEL infer` chooses them
	// without data: uploads are not known at start, and the upload
	// directory is zoo's, not the user's data.
	cfg, err := run.BuildConfig(m.Info, ro)
	if err != nil {
		return serve.Model{}, nil, none, err
	}
	if videos != "" {
		if err := config.ApplySet(cfg, run.Schema(m.Info), []string{"INFER.video_path=" + videos}); err != nil {
			return serve.Model{}, nil, none, err
		}
	}
	var w map[string]string
	if o.Weights == "" && o.Config == "" {
		// The built-in job reads the save dir's newest checkpoint: take
		// the save dir's lock while looking, as zoo run does.
		sd, err := driver.OpenSaveDir(o.SaveDir, "zoo serve "+name)
		if err != nil {
			return serve.Model{}, nil, none, err
		}
		w, err = run.ResolveWeights(ctx, o.F, *m, ro)
		sd.Close()
		if err != nil {
			return serve.Model{}, nil, none, err
		}
	} else if w, err = run.ResolveWeights(ctx, o.F, *m, ro); err != nil {
		return serve.Model{}, nil, none, err
	}
	start := func(ctx context.Context) (serve.Session, sdk.OpenResult, error) {
		client, err := reg.Start(ctx, m)
		if err != nil {
			return nil, none, err
		}
		if videos != "" {
			// Open checks that video_path lists a video (for zoo run, a
			// typo fails before the graph is built); the directory only
			// holds uploads during a pass, so a placeholder stands in.
			ph := filepath.Join(videos, "open.mp4")
			if err := os.WriteFile(ph, nil, 0o600); err != nil {
				client.Kill()
				return nil, none, err
			}
			defer os.Remove(ph)
		}
		s, res, err := run.Open(ctx, client, m.Info, cfg, ro, sdk.OpenRequest{
			Model: name, Mode: sdk.ModeInfer, Weights: w,
			SaveDir: o.SaveDir, WorldSize: 1, Seed: o.Seed,
		})
		if err != nil {
			client.Kill()
			return nil, none, fmt.Errorf("open %s: %w", name, err)
		}
		return &session{RemoteSession: s, c: client}, res, nil
	}
	sess, res, err := start(ctx)
	if err != nil {
		return serve.Model{}, nil, none, err
	}
	sm := serve.Model{Name: name, Version: m.Info.Version, Labels: m.Info.Labels, Input: inputShape(cfg),
		MaxBatch: intOf(cfg["INFER"]["batch_size"], 1), VideoDir: videos, Start: start}
	return sm, sess, res, nil
}

// inputShape is one clip's shape from the config: [seg_num, 3, H, W] for a
// video model, [3, H, W] for an image one.
func inputShape(cfg config.Config) []int64 {
	size := int64(intOf(cfg["INFER"]["target_size"], 224))
	shape := []int64{3, size, size}
	if seg, ok := cfg["MODEL"]["seg_num"]; ok {
		shape = append([]int64{int64(intOf(seg, 1))}, shape...)
	}
	return shape
}

func intOf(v any, def int) int {
	switch v := v.(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return def
}

var _ serve.Session = (*session)(nil)
