package serve

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"path"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/zoo-ml/zoo/host/serve/inferencepb"
)

// GRPC returns a gRPC server that answers the Open Inference Protocol's
// inference.GRPCInferenceService with the HTTP API's models, workers and
// metrics: a ModelInfer joins the same queue and batches as a POST
// .../infer. Serve it on its own listener; GracefulStop it when draining.
func (s *Server) GRPC() *grpc.Server {
	gs := grpc.NewServer(
		// --max-body bounds a message as it bounds an HTTP body; gRPC's
		// default 4 MB is less than one 8x3x224x224 clip (4.8 MB).
		grpc.MaxRecvMsgSize(int(min(s.opts.MaxBody, math.MaxInt32))),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.UnaryInterceptor(s.grpcInstrument),
	)
	pb.RegisterGRPCInferenceServiceServer(gs, &grpcService{s: s})
	return gs
}

// grpcInstrument is instrument's twin: the deadline, the status of an
// error, the metrics (endpoint "grpc/METHOD", code the gRPC code's name)
// and one log line per call, probes left out.
func (s *Server) grpcInstrument(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	method := path.Base(info.FullMethod)
	endpoint := "grpc/" + method
	probe := method == "ServerLive" || method == "ServerReady"
	if !probe {
		s.met.inflight.Inc()
		defer s.met.inflight.Dec()
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	resp, err := handler(ctx, req)
	err = grpcStatus(err)
	model := ""
	switch r := req.(type) {
	case interface{ GetModelName() string }:
		model = r.GetModelName()
	case interface{ GetName() string }:
		model = r.GetName()
	}
	code := status.Code(err)
	d := time.Since(start)
	model = s.observe(model, endpoint, code.String(), d)
	if !probe {
		args := []any{"method", info.FullMethod, "endpoint", endpoint, "model", model, "code", code.String(),
			"duration_ms", float64(d.Microseconds()) / 1000}
		if err != nil {
			args = append(args, "error", status.Convert(err).Message())
		}
		s.log.Info("request", args...)
	}
	return resp, err
}

// grpcStatus turns a handler's error (a statusError with its HTTP code)
// into the gRPC status of the same meaning.
func grpcStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var se *statusError
	if !errors.As(err, &se) {
		return status.Error(codes.Internal, err.Error())
	}
	c := codes.Internal
	switch se.code {
	case http.StatusBadRequest:
		c = codes.InvalidArgument
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusServiceUnavailable:
		c = codes.Unavailable
	case http.StatusGatewayTimeout:
		c = codes.DeadlineExceeded
	case http.StatusNotImplemented:
		c = codes.Unimplemented
	case http.StatusRequestEntityTooLarge:
		c = codes.ResourceExhausted
	}
	return status.Error(c, se.msg)
}

type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func (g *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.s.ready()}, nil
}

func (g *grpcService) ModelReady(_ context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	m, err := g.s.lookup(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelReadyResponse{Ready: g.s.modelReady(m)}, nil
}

func (g *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: "zoo", Version: g.s.opts.Version, Extensions: []string{"classify"}}, nil
}

func (g *grpcService) ModelMetadata(_ context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	m, err := g.s.lookup(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelMetadataResponse{
		Name: m.Name, Versions: []string{m.Version}, Platform: "zoo",
		Inputs:  []*pb.ModelMetadataResponse_TensorMetadata{{Name: InputName, Datatype: "FP32", Shape: m.inShape()}},
		Outputs: []*pb.ModelMetadataResponse_TensorMetadata{{Name: OutputName, Datatype: "FP32", Shape: m.outShape()}},
	}, nil
}

func (g *grpcService) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	m, err := g.s.lookup(req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, err
	}
	if err := g.s.takesWork(m); err != nil {
		return nil, err
	}
	for _, o := range req.GetOutputs() {
		if o.GetName() != OutputName {
			return nil, errorf(http.StatusBadRequest, "requested output %q: model %s has one output, %q", o.GetName(), m.Name, OutputName)
		}
	}
	ins := make([]v2Tensor, len(req.GetInputs()))
	for i, t := range req.GetInputs() {
		ins[i] = v2Tensor{Name: t.GetName(), Shape: t.GetShape(), Datatype: t.GetDatatype()}
	}
	n, err := m.checkHeader(ins)
	if err != nil {
		return nil, err
	}
	t := req.GetInputs()[0]
	raw := req.GetRawInputContents()
	var data []float32
	switch {
	case len(raw) > 0 && t.GetContents() != nil:
		return nil, errorf(http.StatusBadRequest, "input %q: give its values in contents or in raw_input_contents, not both", t.GetName())
	case len(raw) > 0:
		if len(raw) != 1 || int64(len(raw[0])) != 4*n {
			return nil, errorf(http.StatusBadRequest, "raw_input_contents: input %q shape %v takes one entry of %d bytes (FP32, little-endian), got %d entries of %d bytes", t.GetName(), t.GetShape(), 4*n, len(raw), len(raw[0]))
		}
		data = make([]float32, n)
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[0][4*i:]))
		}
	default:
		data = t.GetContents().GetFp32Contents()
		if int64(len(data)) != n {
			return nil, errorf(http.StatusBadRequest, "input %q shape %v holds %d values, contents.fp32_contents has %d", t.GetName(), t.GetShape(), n, len(data))
		}
	}
	clips := int(t.GetShape()[0])
	a := m.submit(&job{ctx: ctx, clips: clips, in: data})
	if a.err != nil {
		return nil, a.err
	}
	out := &pb.ModelInferResponse_InferOutputTensor{Name: OutputName, Datatype: "FP32", Shape: []int64{int64(clips), int64(a.k)}}
	resp := &pb.ModelInferResponse{ModelName: m.Name, ModelVersion: m.Version, Id: req.GetId(), Outputs: []*pb.ModelInferResponse_InferOutputTensor{out}}
	if len(raw) > 0 {
		// Answered in the form asked in, as Triton does.
		b := make([]byte, 4*len(a.probs))
		for i, v := range a.probs {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		resp.RawOutputContents = [][]byte{b}
	} else {
		out.Contents = &pb.InferTensorContents{Fp32Contents: a.probs}
	}
	return resp, nil
}
