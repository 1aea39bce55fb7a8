package sdk

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zoo-ml/zoo/sdk/internal/pb"
)

// Serve serves the provider's models over zoo's protocol and never returns.
// Call it from the plugin's main. Logs written with Logger reach the host,
// which shows them under its own --log-level.
func Serve(p Provider) {
	serve(p, Handshake, ProtocolMinor)
}

// ServeAt is Serve reporting an older minor protocol version, as a plugin
// built with an older sdk would: for testing hosts against old plugins.
func ServeAt(p Provider, minor uint32) {
	serve(p, Handshake, minor)
}

// serve is Serve with the version numbers open, for protocol tests.
func serve(p Provider, hs plugin.HandshakeConfig, minor uint32) {
	ownedByHost()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{pluginKey: &grpcPlugin{provider: p, minor: minor}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
			return grpc.NewServer(opts...)
		},
		Logger: Logger(),
	})
}

// Logger returns the logger a plugin should use: hclog JSON on stderr, at
// every level, so that the host's level decides what is shown.
func Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// grpcPlugin adapts between go-plugin and the protocol; it is the only place
// that knows both.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	provider Provider
	minor    uint32
}

func (g *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &server{provider: g.provider, minor: g.minor, sessions: map[string]*served{}})
	return nil
}

func (g *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewPluginClient(c), nil
}

type server struct {
	pb.UnimplementedPluginServer
	provider Provider
	minor    uint32

	mu       sync.Mutex
	sessions map[string]*served
	next     atomic.Int64
}

// served is a session with its calls in a queue: the host may send Save or
// Close while a Run it cancelled is still finishing its step, and a model
// must not be saved in the middle of one. Each call waits for the one
// before it to return.
type served struct {
	Session
	turn  chan struct{} // holds one token; a call takes it for its duration
	train trainState    // a StepResumer's position (resume.go); guarded by turn
}

func newServed(s Session) *served {
	sv := &served{Session: s, turn: make(chan struct{}, 1)}
	sv.turn <- struct{}{}
	return sv
}

// take waits for the session's turn, or for ctx (the host gave up on the
// call); the returned func gives the turn back.
func (sv *served) take(ctx context.Context) (func(), error) {
	select {
	case <-sv.turn:
		return func() { sv.turn <- struct{}{} }, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// guard turns a panic inside plugin code into an INTERNAL status, so that no
// panic crosses the process boundary as a crash.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = status.Errorf(codes.Internal, "plugin panic: %v\n%s", r, debug.Stack())
	}
}

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	c := codes.Internal
	switch CodeOf(err) {
	case CodeInvalidArgument:
		c = codes.InvalidArgument
	case CodeNotFound:
		c = codes.NotFound
	case CodeFailedPrecondition:
		c = codes.FailedPrecondition
	case CodeUnimplemented:
		c = codes.Unimplemented
	}
	return status.Error(c, err.Error())
}

// lookup finds a session without waiting for its turn.
func (s *server) lookup(id string) (*served, error) {
	s.mu.Lock()
	sv, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no session %q", id)
	}
	return sv, nil
}

// session finds a session and waits for its turn; done gives it back.
func (s *server) session(ctx context.Context, id string) (sv *served, done func(), err error) {
	sv, err = s.lookup(id)
	if err != nil {
		return nil, nil, err
	}
	done, err = sv.take(ctx)
	if err != nil {
		return nil, nil, err
	}
	return sv, done, nil
}

func (s *server) Describe(ctx context.Context, _ *pb.DescribeRequest) (resp *pb.DescribeResponse, err error) {
	defer guard(&err)
	models, err := s.provider.Models(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp = &pb.DescribeResponse{ProtocolMinor: s.minor}
	for _, m := range models {
		pm, err := modelToProto(m)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		resp.Models = append(resp.Models, pm)
	}
	return resp, nil
}

func (s *server) Open(ctx context.Context, req *pb.OpenRequest) (resp *pb.OpenResponse, err error) {
	defer guard(&err)
	r, err := openFromProto(req)
	if err != nil {
		return nil, toStatus(err)
	}
	sess, res, err := s.provider.Open(ctx, r)
	if err != nil {
		return nil, toStatus(err)
	}
	id := strconv.FormatInt(s.next.Add(1), 10)
	s.mu.Lock()
	s.sessions[id] = newServed(sess)
	s.mu.Unlock()
	return &pb.OpenResponse{Session: id, Notes: res.Notes, Labels: res.Labels, Epochs: int32(min(max(res.Epochs, 0), math.MaxInt32))}, nil
}

func (s *server) Run(req *pb.RunRequest, stream pb.Plugin_RunServer) (err error) {
	defer guard(&err)
	sess, done, err := s.session(stream.Context(), req.GetSession())
	if err != nil {
		return err
	}
	defer done()
	emit := func(e Event) error {
		pe, err := eventToProto(e)
		if err != nil {
			return err
		}
		return stream.Send(pe)
	}
	r := runFromProto(req)
	return toStatus(sess.Run(stream.Context(), r, sess.train.counting(sess.Session, r, emit)))
}

func (s *server) Infer(ctx context.Context, req *pb.InferRequest) (resp *pb.InferResponse, err error) {
	defer guard(&err)
	sess, done, err := s.session(ctx, req.GetSession())
	if err != nil {
		return nil, err
	}
	defer done()
	inf, ok := sess.Session.(Inferer)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this model does not take tensors from the host")
	}
	in := tensorFromProto(req.GetInput())
	if err := in.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	out, err := inf.Infer(ctx, in)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.InferResponse{Output: tensorToProto(out)}, nil
}

// Decode does not take the session's turn: the host decodes the next
// uploads while Infer runs, which is the point of the call (FileDecoder).
func (s *server) Decode(ctx context.Context, req *pb.DecodeRequest) (resp *pb.DecodeResponse, err error) {
	defer guard(&err)
	sv, err := s.lookup(req.GetSession())
	if err != nil {
		return nil, err
	}
	dec, ok := sv.Session.(FileDecoder)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this model does not decode files for the host")
	}
	d, err := dec.Decode(ctx, req.GetPath())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DecodeResponse{Input: tensorToProto(d.Input), Frames: d.Frames, Mean: d.Mean, Std: d.Std}, nil
}

func (s *server) Save(ctx context.Context, req *pb.SaveRequest) (resp *pb.SaveResponse, err error) {
	defer guard(&err)
	sess, done, err := s.session(ctx, req.GetSession())
	if err != nil {
		return nil, err
	}
	defer done()
	if err := sess.Save(ctx, req.GetDir()); err != nil {
		return nil, toStatus(err)
	}
	return sess.train.saved(), nil
}

func (s *server) Load(ctx context.Context, req *pb.LoadRequest) (resp *pb.LoadResponse, err error) {
	defer guard(&err)
	sess, done, err := s.session(ctx, req.GetSession())
	if err != nil {
		return nil, err
	}
	defer done()
	res, err := sess.Load(ctx, req.GetDir(), req.GetKind())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LoadResponse{Loaded: int64(res.Loaded), Ignored: int64(res.Ignored)}, nil
}

func (s *server) Close(ctx context.Context, req *pb.CloseRequest) (resp *pb.CloseResponse, err error) {
	defer guard(&err)
	s.mu.Lock()
	sv, ok := s.sessions[req.GetSession()]
	delete(s.sessions, req.GetSession())
	s.mu.Unlock()
	if !ok {
		return &pb.CloseResponse{}, nil
	}
	done, err := sv.take(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := sv.Close(); err != nil {
		return nil, toStatus(fmt.Errorf("close: %w", err))
	}
	return &pb.CloseResponse{}, nil
}
