// Package dist is zoo's data parallelism: a Communicator (rank, size,
// allreduce, broadcast, gather, barrier, abort) with a one-process
// implementation (Local) and, in builds with the tag mpi, one over Open
// MPI (dist/internal/mpi). Plugins use it; the host never imports it (it
// reads rank and world size from the launcher's environment with
// package-free code of its own; internal/depcheck enforces the edge).
package dist

import (
	"os"

	"github.com/zoo-ml/zoo/internal/launcher"
)

// Communicator is what a data-parallel step needs of its peers. Every call
// is collective (every rank makes it, in one order) except Rank, Size and
// Abort. Buffers are summed or copied in place.
type Communicator interface {
	Rank() int
	Size() int
	// AllreduceSum replaces buf with the element-wise sum over ranks.
	AllreduceSum(buf []float32) error
	AllreduceSum64(buf []float64) error
	// Broadcast copies root's buf into every rank's buf (one length).
	Broadcast(buf []byte, root int) error
	// Gather returns, at root, every rank's send in rank order (lengths may
	// differ); other ranks get nil.
	Gather(send []byte, root int) ([][]byte, error)
	Barrier() error
	// Abort ends every process of the job with code.
	Abort(code int)
	// Close ends the communicator (MPI_Finalize).
	Close() error
}

// Local is the one-process Communicator: rank 0 of 1, every collective
// the identity.
type Local struct{}

func (Local) Rank() int                      { return 0 }
func (Local) Size() int                      { return 1 }
func (Local) AllreduceSum([]float32) error   { return nil }
func (Local) AllreduceSum64([]float64) error { return nil }
func (Local) Broadcast([]byte, int) error    { return nil }
func (Local) Barrier() error                 { return nil }
func (Local) Close() error                   { return nil }
func (Local) Abort(code int)                 { os.Exit(code) }
func (Local) Gather(send []byte, root int) ([][]byte, error) {
	return [][]byte{append([]byte(nil), send...)}, nil
}

// Open returns the job's Communicator: Local for one process, MPI for a
// world larger than one (an error in a build without the tag mpi).
func Open() (Communicator, error) {
	// The launcher's environment (internal/launcher, which the host shares).
	w, err := launcher.FromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	if w.Size == 1 {
		return Local{}, nil
	}
	return openMPI(w)
}

// Split returns the [lo, hi) share of n items that rank takes of size
// ranks: contiguous, in rank order, the first n%size ranks one more.
func Split(n, rank, size int) (lo, hi int) {
	q, r := n/size, n%size
	lo = rank*q + min(rank, r)
	hi = lo + q
	if rank < r {
		hi++
	}
	return lo, hi
}
