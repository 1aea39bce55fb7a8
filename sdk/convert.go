package sdk

import (
	"encoding/json"
	"fmt"

	"github.com/zoo-ml/zoo/sdk/internal/pb"
)

// One pure conversion function per message, each way.

func modelToProto(m ModelInfo) (*pb.ModelInfo, error) {
	out := &pb.ModelInfo{
		Name:        m.Name,
		Version:     m.Version,
		Description: m.Description,
		Tasks:       m.Tasks,
		Labels:      m.Labels,
	}
	if m.DefaultConfig != nil {
		b, err := json.Marshal(m.DefaultConfig)
		if err != nil {
			return nil, fmt.Errorf("model %s: default config: %w", m.Name, err)
		}
		out.DefaultConfigJson = b
	}
	for _, k := range m.Config {
		def, err := json.Marshal(k.Default)
		if err != nil {
			return nil, fmt.Errorf("model %s: default of %s.%s: %w", m.Name, k.Section, k.Name, err)
		}
		out.ConfigKeys = append(out.ConfigKeys, &pb.ConfigKey{
			Section: k.Section, Name: k.Name, Type: k.Type, DefaultJson: string(def), Help: k.Help,
		})
	}
	for _, w := range m.WeightSets {
		pw := &pb.WeightSet{
			Name: w.Name, Url: w.URL, Dir: w.Dir, Sha256: w.SHA256, Use: w.Use,
			Required: w.Required, Description: w.Description,
		}
		for _, t := range w.Tensors {
			pw.Tensors = append(pw.Tensors, &pb.WeightSet_Tensor{Name: t.Name, Dtype: t.DType, Shape: t.Shape})
		}
		out.WeightSets = append(out.WeightSets, pw)
	}
	return out, nil
}

func modelFromProto(m *pb.ModelInfo) (ModelInfo, error) {
	out := ModelInfo{
		Name:        m.GetName(),
		Version:     m.GetVersion(),
		Description: m.GetDescription(),
		Tasks:       m.GetTasks(),
		Labels:      m.GetLabels(),
	}
	if b := m.GetDefaultConfigJson(); len(b) > 0 {
		if err := json.Unmarshal(b, &out.DefaultConfig); err != nil {
			return ModelInfo{}, fmt.Errorf("model %s: default config is not JSON: %w", m.GetName(), err)
		}
	}
	for _, k := range m.GetConfigKeys() {
		var def any
		if s := k.GetDefaultJson(); s != "" {
			if err := json.Unmarshal([]byte(s), &def); err != nil {
				return ModelInfo{}, fmt.Errorf("model %s: default of %s.%s is not JSON: %w", m.GetName(), k.GetSection(), k.GetName(), err)
			}
		}
		out.Config = append(out.Config, ConfigKey{
			Section: k.GetSection(), Name: k.GetName(), Type: k.GetType(), Default: def, Help: k.GetHelp(),
		})
	}
	for _, w := range m.GetWeightSets() {
		ws := WeightSet{
			Name: w.GetName(), URL: w.GetUrl(), Dir: w.GetDir(), SHA256: w.GetSha256(), Use: w.GetUse(),
			Required: w.GetRequired(), Description: w.GetDescription(),
		}
		for _, t := range w.GetTensors() {
			ws.Tensors = append(ws.Tensors, TensorSpec{Name: t.GetName(), DType: t.GetDtype(), Shape: t.GetShape()})
		}
		out.WeightSets = append(out.WeightSets, ws)
	}
	return out, nil
}

func openToProto(r OpenRequest) (*pb.OpenRequest, error) {
	cfg, err := json.Marshal(r.Config)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return &pb.OpenRequest{
		Model: r.Model, Mode: r.Mode, ConfigJson: cfg, Weights: r.Weights, SaveDir: r.SaveDir,
		Device: r.Device, Rank: int32(r.Rank), WorldSize: int32(r.WorldSize), Seed: r.Seed,
		HostVersion: r.HostVersion,
	}, nil
}

func openFromProto(r *pb.OpenRequest) (OpenRequest, error) {
	var cfg Config
	if len(r.GetConfigJson()) > 0 {
		if err := json.Unmarshal(r.GetConfigJson(), &cfg); err != nil {
			return OpenRequest{}, Errorf(CodeInvalidArgument, "config is not a JSON object of sections: %v", err)
		}
	}
	ws := int(r.GetWorldSize())
	if ws == 0 {
		ws = 1
	}
	return OpenRequest{
		Model: r.GetModel(), Mode: r.GetMode(), Config: cfg, Weights: r.GetWeights(), SaveDir: r.GetSaveDir(),
		Device: r.GetDevice(), Rank: int(r.GetRank()), WorldSize: ws, Seed: r.GetSeed(),
		HostVersion: r.GetHostVersion(),
	}, nil
}

func runToProto(session string, r RunRequest) *pb.RunRequest {
	return &pb.RunRequest{Session: session, Phase: r.Phase, Epoch: int32(r.Epoch), GlobalStep: r.GlobalStep, MaxSteps: r.MaxSteps, StartStep: r.StartStep}
}

func runFromProto(r *pb.RunRequest) RunRequest {
	return RunRequest{Phase: r.GetPhase(), Epoch: int(r.GetEpoch()), GlobalStep: r.GetGlobalStep(), MaxSteps: r.GetMaxSteps(), StartStep: r.GetStartStep()}
}

func saveToProto(r SaveResult) *pb.SaveResponse {
	if r.Position == nil {
		return &pb.SaveResponse{}
	}
	out := &pb.SaveResponse{HasTrainPosition: true, TrainEpoch: int32(r.Position.Epoch), TrainSteps: r.Position.Steps}
	for _, st := range r.RecentSteps {
		out.RecentSteps = append(out.RecentSteps, &pb.Step{Iter: st.Iter, Samples: st.Samples, Metrics: st.Metrics})
	}
	return out
}

func saveFromProto(r *pb.SaveResponse) SaveResult {
	if !r.GetHasTrainPosition() {
		return SaveResult{}
	}
	out := SaveResult{Position: &TrainPosition{Epoch: int(r.GetTrainEpoch()), Steps: r.GetTrainSteps()}}
	for _, st := range r.GetRecentSteps() {
		out.RecentSteps = append(out.RecentSteps, Step{Iter: st.GetIter(), Samples: st.GetSamples(), Metrics: st.GetMetrics()})
	}
	return out
}

func tensorToProto(t Tensor) *pb.Tensor {
	return &pb.Tensor{Shape: t.Shape, Data: t.Data}
}

func tensorFromProto(t *pb.Tensor) Tensor {
	return Tensor{Shape: t.GetShape(), Data: t.GetData()}
}

func eventToProto(e Event) (*pb.Event, error) {
	switch {
	case e.Start != nil:
		return &pb.Event{Kind: &pb.Event_Start{Start: &pb.Start{Steps: e.Start.Steps, Samples: e.Start.Samples}}}, nil
	case e.Step != nil:
		return &pb.Event{Kind: &pb.Event_Step{Step: &pb.Step{Iter: e.Step.Iter, Samples: e.Step.Samples, Metrics: e.Step.Metrics}}}, nil
	case e.Prediction != nil:
		p := e.Prediction
		return &pb.Event{Kind: &pb.Event_Prediction{Prediction: &pb.Prediction{Id: p.ID, Scores: tensorToProto(p.Scores), Label: int32(p.Label)}}}, nil
	case e.Warning != nil:
		return &pb.Event{Kind: &pb.Event_Warning{Warning: &pb.Warning{Message: e.Warning.Message, Path: e.Warning.Path}}}, nil
	}
	return nil, fmt.Errorf("empty event")
}

func eventFromProto(e *pb.Event) (Event, error) {
	switch k := e.GetKind().(type) {
	case *pb.Event_Start:
		return Event{Start: &Start{Steps: k.Start.GetSteps(), Samples: k.Start.GetSamples()}}, nil
	case *pb.Event_Step:
		return Event{Step: &Step{Iter: k.Step.GetIter(), Samples: k.Step.GetSamples(), Metrics: k.Step.GetMetrics()}}, nil
	case *pb.Event_Prediction:
		p := k.Prediction
		return Event{Prediction: &Prediction{ID: p.GetId(), Scores: tensorFromProto(p.GetScores()), Label: int(p.GetLabel())}}, nil
	case *pb.Event_Warning:
		return Event{Warning: &Warning{Message: k.Warning.GetMessage(), Path: k.Warning.GetPath()}}, nil
	}
	// An event kind from a newer minor version: the caller skips it.
	return Event{}, nil
}
