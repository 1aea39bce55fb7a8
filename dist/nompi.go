//go:build !mpi

package dist

import (
	"fmt"

	"github.com/zoo-ml/zoo/internal/launcher"
)

func openMPI(w launcher.World) (Communicator, error) {
	return nil, fmt.Errorf("%s started %d ranks, but this build of zoo has no MPI: build with `make build` (tag mpi, after `make deps`) or run one process", w.Launcher, w.Size)
}
