//go:build !mpi

package dist

import "fmt"

// Built reports whether this build has the MPI Communicator.
const Built = false

func openMPI(w World) (Communicator, error) {
	return nil, fmt.Errorf("%s started %d ranks, but this build of zoo has no MPI: build with `make build` (tag mpi, after `make deps`) or run one process", w.Launcher, w.Size)
}
