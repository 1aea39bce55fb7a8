package main_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/zoo-ml/zoo/host/serve/inferencepb"
	"github.com/zoo-ml/zoo/internal/shareddata"
)

// TestServeGRPC calls `zoo serve --grpc-addr` with a real gRPC client over
// loopback: every call of inference.GRPCInferenceService, ModelInfer with
// fp32_contents and with raw_input_contents equal to the HTTP infer
// answer (within 1e-6), batched with HTTP requests, bad requests answered
// with the gRPC code naming the problem, the calls counted in /metrics,
// and SIGTERM draining a gRPC call in flight before exit 0.
func TestServeGRPC(t *testing.T) {
	cfg, ckpt := servedTSM(t)
	clip := clipOf(t, filepath.Join(shareddata.Dir(t), "videos", "test.mp4"))
	s := startServe(t, "TSM", "--config", cfg, "--weights", ckpt, "--window", "2s", "--grpc-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`over gRPC on (\S+)`).FindStringSubmatch(s.stderr())
	if m == nil {
		t.Fatalf("no gRPC address in zoo serve's output:\n%s", s.stderr())
	}
	conn, err := grpc.NewClient(m[1], grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewGRPCInferenceServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if r, err := c.ServerLive(ctx, &pb.ServerLiveRequest{}); err != nil || !r.Live {
		t.Errorf("ServerLive: %v, %v", r, err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Errorf("ServerReady: %v, %v", r, err)
	}
	if r, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "TSM"}); err != nil || !r.Ready {
		t.Errorf("ModelReady: %v, %v", r, err)
	}
	if r, err := c.ServerMetadata(ctx, &pb.ServerMetadataRequest{}); err != nil || r.Name != "zoo" || len(r.Extensions) != 1 {
		t.Errorf("ServerMetadata: %v, %v", r, err)
	}
	if r, err := c.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: "TSM"}); err != nil || len(r.Inputs) != 1 ||
		r.Inputs[0].Name != "clip" || r.Inputs[0].Datatype != "FP32" || len(r.Inputs[0].Shape) != 5 || r.Inputs[0].Shape[4] != 32 || r.Outputs[0].Shape[1] != 4 {
		t.Errorf("ModelMetadata: %v, %v", r, err)
	}

	shape := []int64{1, 8, 3, 32, 32}
	raw := make([]byte, 4*len(clip))
	for i, v := range clip {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	typed := &pb.ModelInferRequest{ModelName: "TSM", Id: "typed", Inputs: []*pb.ModelInferRequest_InferInputTensor{
		{Name: "clip", Datatype: "FP32", Shape: shape, Contents: &pb.InferTensorContents{Fp32Contents: clip}}}}
	rawReq := &pb.ModelInferRequest{ModelName: "TSM", Id: "raw", Inputs: []*pb.ModelInferRequest_InferInputTensor{
		{Name: "clip", Datatype: "FP32", Shape: shape}}, RawInputContents: [][]byte{raw}}

	// HTTP and gRPC at once: they meet in one batch (the 2 s window).
	var wg sync.WaitGroup
	var httpProbs, typedProbs, rawProbs []float32
	wg.Go(func() {
		code, b := s.call("POST", "/v2/models/TSM/infer", "", inferBody(t, shape, "FP32", clip))
		var a inferAnswer
		if json.Unmarshal(b, &a) != nil || code != 200 || len(a.Outputs) != 1 {
			t.Errorf("HTTP infer: %d %s", code, b)
			return
		}
		httpProbs = a.Outputs[0].Data
	})
	wg.Go(func() {
		r, err := c.ModelInfer(ctx, typed)
		if err != nil || r.Id != "typed" || r.ModelName != "TSM" || len(r.Outputs) != 1 || r.Outputs[0].Name != "probabilities" || len(r.Outputs[0].Shape) != 2 || r.Outputs[0].Shape[1] != 4 {
			t.Errorf("ModelInfer with fp32_contents: %v, %v", r, err)
			return
		}
		typedProbs = r.Outputs[0].GetContents().GetFp32Contents()
	})
	wg.Go(func() {
		r, err := c.ModelInfer(ctx, rawReq)
		if err != nil || len(r.RawOutputContents) != 1 || len(r.RawOutputContents[0]) != 16 {
			t.Errorf("ModelInfer with raw_input_contents: %v, %v", r, err)
			return
		}
		for i := 0; i < 4; i++ {
			rawProbs = append(rawProbs, math.Float32frombits(binary.LittleEndian.Uint32(r.RawOutputContents[0][4*i:])))
		}
	})
	wg.Wait()
	for name, got := range map[string][]float32{"fp32_contents": typedProbs, "raw_input_contents": rawProbs} {
		if len(got) != 4 || len(httpProbs) != 4 {
			t.Errorf("%s: %v, HTTP %v", name, got, httpProbs)
			continue
		}
		for i := range got {
			if math.Abs(float64(got[i]-httpProbs[i])) > 1e-6 {
				t.Errorf("%s: %v, HTTP infer %v", name, got, httpProbs)
				break
			}
		}
	}
	if n := s.metric(`zoo_inference_batch_size_bucket{model="TSM",le="1"}`); n != 0 {
		t.Errorf("%v batches of one clip: gRPC and HTTP requests did not share a batch", n)
	}

	// Bad requests: the gRPC code and a message naming the problem.
	bad := func(mod func(r *pb.ModelInferRequest)) *pb.ModelInferRequest {
		r := &pb.ModelInferRequest{ModelName: "TSM", Inputs: []*pb.ModelInferRequest_InferInputTensor{
			{Name: "clip", Datatype: "FP32", Shape: shape, Contents: &pb.InferTensorContents{Fp32Contents: clip}}}}
		mod(r)
		return r
	}
	for _, cs := range []struct {
		name string
		req  *pb.ModelInferRequest
		code codes.Code
		want string
	}{
		{"unknown model", bad(func(r *pb.ModelInferRequest) { r.ModelName = "C3D" }), codes.NotFound, `unknown model "C3D"`},
		{"unknown version", bad(func(r *pb.ModelInferRequest) { r.ModelVersion = "9" }), codes.NotFound, `no version "9"`},
		{"wrong shape", bad(func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{1, 8, 3, 32, 16} }), codes.InvalidArgument, "shape [1 8 3 32 16]"},
		{"wrong dtype", bad(func(r *pb.ModelInferRequest) { r.Inputs[0].Datatype = "INT64" }), codes.InvalidArgument, `datatype "INT64"`},
		{"short contents", bad(func(r *pb.ModelInferRequest) { r.Inputs[0].Contents.Fp32Contents = clip[:2] }), codes.InvalidArgument, "fp32_contents has 2"},
		{"short raw", bad(func(r *pb.ModelInferRequest) { r.Inputs[0].Contents = nil; r.RawInputContents = [][]byte{raw[:8]} }), codes.InvalidArgument, "raw_input_contents"},
		{"contents and raw", bad(func(r *pb.ModelInferRequest) { r.RawInputContents = [][]byte{raw} }), codes.InvalidArgument, "not both"},
		{"wrong input name", bad(func(r *pb.ModelInferRequest) { r.Inputs[0].Name = "x" }), codes.InvalidArgument, `takes one input "clip"`},
		{"unknown output", bad(func(r *pb.ModelInferRequest) {
			r.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}
		}), codes.InvalidArgument, `requested output "logits"`},
	} {
		_, err := c.ModelInfer(ctx, cs.req)
		if st := status.Convert(err); st.Code() != cs.code || !strings.Contains(st.Message(), cs.want) {
			t.Errorf("%s: %v, want %v with %s", cs.name, err, cs.code, cs.want)
		}
	}
	if _, err := c.ModelReady(ctx, &pb.ModelReadyRequest{Name: "C3D"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady of an unknown model: %v, want NotFound", err)
	}
	if r, err := c.ServerReady(ctx, &pb.ServerReadyRequest{}); err != nil || !r.Ready {
		t.Errorf("ServerReady after bad requests: %v, %v", r, err)
	}
	if n := s.metric(`zoo_requests_total{code="OK",endpoint="grpc/ModelInfer",model="TSM"}`); n != 2 {
		t.Errorf("zoo_requests_total of gRPC ModelInfer OK: %v, want 2", n)
	}
	if n := s.metric(`zoo_requests_total{code="InvalidArgument",endpoint="grpc/ModelInfer",model="TSM"}`); n != 7 {
		t.Errorf("zoo_requests_total of gRPC ModelInfer InvalidArgument: %v, want 7", n)
	}

	// SIGTERM with a gRPC call in flight (held by the 2 s window): it is
	// answered and zoo exits 0.
	answered := make(chan error, 1)
	go func() {
		_, err := c.ModelInfer(ctx, typed)
		answered <- err
	}()
	eventually(t, "a gRPC call in flight", func() bool { return s.metric("zoo_requests_in_flight") == 1 })
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-answered; err != nil {
		t.Errorf("the gRPC call in flight at SIGTERM: %v", err)
	}
	select {
	case <-s.exited:
		if s.err != nil {
			t.Errorf("zoo serve after SIGTERM: %v\n%s", s.err, s.stderr())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("zoo serve still running 2 minutes after SIGTERM:\n%s", s.stderr())
	}
	if !strings.Contains(s.stderr(), `"endpoint":"grpc/ModelInfer"`) {
		t.Errorf("no request log line for gRPC calls:\n%s", s.stderr())
	}
}

// TestServeGRPCUsage: bad --grpc-addr and --decoders values are one-line
// usage errors before anything starts.
func TestServeGRPCUsage(t *testing.T) {
	oneLineError(t, zoo(t, nil, "serve", "TSM", "--grpc-addr", "8081"), 2, `--grpc-addr "8081"`)
	oneLineError(t, zoo(t, nil, "serve", "TSM", "--decoders", "-1"), 2, "--decoders -1")
}
