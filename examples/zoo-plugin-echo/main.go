// Command zoo-plugin-echo is a worked example of a zoo plugin written
// outside zoo's module: it imports only github.com/zoo-ml/zoo/sdk,
// implements sdk.Provider and sdk.Session, and calls sdk.Serve. It never
// touches gRPC or protobuf.
//
// Its model Echo classifies lines of text as having an even or an odd
// number of characters: enough to show a config schema with a default job,
// test metrics, predictions, warnings, Save/Load and the optional Infer.
// Its model Parity (parity.go) learns the same thing: it trains, saves,
// resumes inside an epoch, tests and infers.
//
// Build and install it:
//
//	cd examples/zoo-plugin-echo && go build
//	zoo plugins install ./zoo-plugin-echo
//	zoo list
//	zoo run Echo infer
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zoo-ml/zoo/sdk"
)

func main() { sdk.Serve(provider{}) }

// provider serves the Echo model.
type provider struct{}

// Echo's labels: class i is "length mod 2 == i".
var labels = []string{"even", "odd"}

func (provider) Models(context.Context) ([]sdk.ModelInfo, error) {
	parity, err := parityInfo()
	if err != nil {
		return nil, err
	}
	return []sdk.ModelInfo{parity, {
		Name:        "Echo",
		Version:     "0.1.0",
		Description: "classifies lines of text by the parity of their length (an SDK example)",
		Tasks:       []string{sdk.ModeTest, sdk.ModeInfer},
		// Every key the model accepts, with its default: the host checks
		// user configs against these and names the closest key on a typo.
		Config: []sdk.ConfigKey{
			{Section: "MODEL", Name: "confidence", Type: "float", Default: 0.9, Help: "the score of the predicted class"},
			{Section: "TEST", Name: "filelist", Type: "string", Default: "", Help: `"text label" lines; empty: built-in lines`},
			{Section: "INFER", Name: "filelist", Type: "string", Default: "", Help: "lines of text; empty: built-in lines"},
		},
		// The job `zoo run Echo infer` runs with no config.
		DefaultConfig: sdk.Config{"MODEL": {"confidence": 0.75}},
		Labels:        labels,
	}}, nil
}

func (provider) Open(_ context.Context, req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	if req.Model == "Parity" {
		return openParity(req)
	}
	if req.Model != "Echo" {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeNotFound, "this plugin serves Echo and Parity, not %q", req.Model)
	}
	conf, _ := req.Config["MODEL"]["confidence"].(float64)
	if conf <= 0.5 || conf > 1 {
		// A user's mistake: an *sdk.Error with a code, one line, naming the key.
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.confidence %v: want a value in (0.5, 1]", conf)
	}
	s := &session{confidence: conf}
	section := strings.ToUpper(req.Mode)
	s.list, _ = req.Config[section]["filelist"].(string)
	if dir := req.Weights[sdk.UseWeights]; dir != "" {
		if _, err := s.Load(context.Background(), dir, sdk.UseWeights); err != nil {
			return nil, sdk.OpenResult{}, err
		}
	}
	return s, sdk.OpenResult{Notes: []string{fmt.Sprintf("Echo, confidence %.2f", s.confidence)}}, nil
}

type session struct {
	confidence float64
	list       string
}

// line is one sample: its text and, for test, its label.
type line struct {
	text  string
	label int
	where string
}

var builtin = []line{{"hello", 1, "builtin:1"}, {"zoo", 1, "builtin:2"}, {"plugin", 0, "builtin:3"}, {"go", 0, "builtin:4"}}

func (s *session) lines(withLabels bool) ([]line, []sdk.Warning, error) {
	if s.list == "" {
		return builtin, nil, nil
	}
	f, err := os.Open(s.list)
	if err != nil {
		return nil, nil, sdk.Errorf(sdk.CodeNotFound, "filelist %s: %v", s.list, err)
	}
	defer f.Close()
	var out []line
	var warns []sdk.Warning
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := line{text: sc.Text(), label: -1, where: fmt.Sprintf("%s:%d", s.list, n)}
		if withLabels {
			i := strings.LastIndexByte(l.text, ' ')
			lab, err := strconv.Atoi(l.text[i+1:])
			if i < 0 || err != nil || lab < 0 || lab > 1 {
				// The pass survives a bad line and says so.
				warns = append(warns, sdk.Warning{Message: "want \"text label\" with label 0 or 1", Path: l.where})
				continue
			}
			l.text, l.label = l.text[:i], lab
		}
		out = append(out, l)
	}
	return out, warns, sc.Err()
}

func (s *session) scores(text string) []float32 {
	c := float32(s.confidence)
	if len(text)%2 == 0 {
		return []float32{c, 1 - c}
	}
	return []float32{1 - c, c}
}

// Run answers one pass. It checks ctx between samples, as every Session
// must, so that Ctrl-C in the host stops it promptly.
func (s *session) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	lines, warns, err := s.lines(req.Phase == sdk.PhaseTest)
	if err != nil {
		return err
	}
	n := int64(len(lines))
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: n, Samples: n}}); err != nil {
		return err
	}
	for _, w := range warns {
		if err := emit(sdk.Event{Warning: &w}); err != nil {
			return err
		}
	}
	for i, l := range lines {
		if err := ctx.Err(); err != nil {
			return err
		}
		sc := s.scores(l.text)
		switch req.Phase {
		case sdk.PhaseInfer:
			p := &sdk.Prediction{ID: l.text, Scores: sdk.Tensor{Shape: []int64{2}, Data: sc}, Label: -1}
			if err := emit(sdk.Event{Prediction: p}); err != nil {
				return err
			}
		case sdk.PhaseTest:
			top1 := 0.0
			if (sc[1] > sc[0]) == (l.label == 1) {
				top1 = 1
			}
			m := map[string]float64{"loss": 1 - top1, "top1": top1, "top5": 1}
			if err := emit(sdk.Event{Step: &sdk.Step{Iter: int64(i), Samples: 1, Metrics: m}}); err != nil {
				return err
			}
		default:
			return sdk.Errorf(sdk.CodeInvalidArgument, "Echo cannot run phase %q", req.Phase)
		}
	}
	return nil
}

// Save writes the session's state into the directory the host made; the
// host renames it into place, so a checkpoint is whole or absent.
func (s *session) Save(_ context.Context, dir string) error {
	return os.WriteFile(filepath.Join(dir, "confidence"), []byte(strconv.FormatFloat(s.confidence, 'g', -1, 64)), 0o644)
}

func (s *session) Load(_ context.Context, dir, _ string) (sdk.LoadResult, error) {
	b, err := os.ReadFile(filepath.Join(dir, "confidence"))
	if err != nil {
		return sdk.LoadResult{}, sdk.Errorf(sdk.CodeNotFound, "weights %s: %v", dir, err)
	}
	c, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return sdk.LoadResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "weights %s: confidence %q is not a number", dir, b)
	}
	s.confidence = c
	return sdk.LoadResult{Loaded: 1}, nil
}

// Infer is the optional sdk.Inferer capability: scores for a tensor the
// host sends (here: the text as bytes, one value per byte).
func (s *session) Infer(_ context.Context, in sdk.Tensor) (sdk.Tensor, error) {
	return sdk.Tensor{Shape: []int64{2}, Data: s.scores(strings.Repeat(" ", len(in.Data)))}, nil
}

func (s *session) Close() error { return nil }

// The interfaces this plugin promises, checked at compile time.
var (
	_ sdk.Provider = provider{}
	_ sdk.Session  = (*session)(nil)
	_ sdk.Inferer  = (*session)(nil)
)
