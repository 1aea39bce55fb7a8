package sdk

import (
	"context"
	"maps"

	"github.com/zoo-ml/zoo/sdk/internal/pb"
)

// StepResumer is an optional capability of a Session: its train Run
// honours RunRequest.StartStep, and every random number it draws (data
// order, augmentation, dropout) is a function of the seed, the epoch and
// the step or sample, never of a stream carried from pass to pass. The
// host can then resume an interrupted epoch at its exact step and get the
// same parameters as a run that was never interrupted. For such a session
// the sdk counts the Step events of each train pass and reports the count
// in Save's answer; the plugin writes no code for it.
type StepResumer interface {
	Session
	// ResumesAtStep marks the capability; it is never called.
	ResumesAtStep()
}

// trainState is the train position of a StepResumer session, kept by the
// server (served.train). The session's turn (server.go) keeps Save, Load
// and Close from running while a pass is still finishing its step (the
// host's stream ends at once on Ctrl-C; the plugin's Run a step later), so
// the position Save reports is whole steps.
type trainState struct {
	position *TrainPosition
	recent   []Step // the pass's last Step events, at most MaxRecentSteps
}

// MaxRecentSteps bounds the Step events Save's answer repeats. The host
// misses only the events in flight when an interrupt ends the stream:
// normally the one step that was running.
const MaxRecentSteps = 64

// counting wraps a train pass's emit so that every Step event advances
// the session's position: a step counts once the plugin has emitted it,
// whether or not the host, cancelled, still reads the stream.
func (st *trainState) counting(sess Session, req RunRequest, emit func(Event) error) func(Event) error {
	if _, ok := sess.(StepResumer); !ok || req.Phase != PhaseTrain {
		return emit
	}
	st.position = &TrainPosition{Epoch: req.Epoch, Steps: req.StartStep}
	st.recent = st.recent[:0]
	return func(e Event) error {
		if e.Step != nil {
			st.position.Steps++
			if len(st.recent) == MaxRecentSteps {
				st.recent = append(st.recent[:0], st.recent[1:]...)
			}
			step := *e.Step
			step.Metrics = maps.Clone(step.Metrics)
			st.recent = append(st.recent, step)
		}
		return emit(e)
	}
}

func (st *trainState) saved() *pb.SaveResponse {
	if st.position == nil {
		return saveToProto(SaveResult{})
	}
	p := *st.position
	return saveToProto(SaveResult{Position: &p, RecentSteps: st.recent})
}

// SaveState asks the plugin to write its state into dir and returns where
// training stood, as far as the plugin says.
// A plugin that does not answer within the call timeout (a Run that
// ignores cancellation holds its Save) is killed.
func (s *RemoteSession) SaveState(ctx context.Context, dir string) (SaveResult, error) {
	resp, err := bounded(ctx, s.c, "Save", func(cctx context.Context) (*pb.SaveResponse, error) {
		return s.c.rpc.Save(cctx, &pb.SaveRequest{Session: s.id, Dir: dir})
	})
	if err != nil {
		return SaveResult{}, err
	}
	return saveFromProto(resp), nil
}
