package tsm

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zoo-ml/zoo/sdk"
)

// positionFile is written into a checkpoint saved inside a train epoch: how
// far the epoch had got in its order. A batch takes clips from the order
// until it has batch_size readable ones, so after a video that failed to
// decode the position is not step * batch_size, and a resume must start
// where the interrupted run stood, not where a list without bad videos
// would. Paddle's loaders read the variables they know and ignore it.
const positionFile = "zoo_tsm_position.json"

// position is where a train pass stood after its last whole step.
type position struct {
	Epoch int   `json:"epoch"`
	Step  int64 `json:"step"`  // steps of Epoch done
	Order int   `json:"order"` // clips of the epoch's order taken
}

func writePosition(dir string, p position) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, positionFile), append(b, '\n'), 0o644)
}

// readPosition reads dir's position file; nil when it has none (a
// checkpoint at the end of an epoch, or one zoo saved before it existed).
func readPosition(dir string) (*position, error) {
	b, err := os.ReadFile(filepath.Join(dir, positionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p position
	if err := json.Unmarshal(b, &p); err != nil || p.Step < 0 || p.Order < 0 {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "%s is damaged (%v); resume from an earlier checkpoint", filepath.Join(dir, positionFile), err)
	}
	return &p, nil
}

// startAt returns the position in the epoch's order where a train pass
// starting at step start begins: the one the resumed checkpoint recorded
// when it is for this step, else start whole batches in.
func (s *session) startAt(epoch int, start int64, batch int) int {
	if p := s.resumeAt; p != nil && p.Epoch == epoch && p.Step == start {
		return p.Order
	}
	return int(start) * batch
}
