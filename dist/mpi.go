//go:build mpi

package dist

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/zoo-ml/zoo/dist/internal/mpi"
	"github.com/zoo-ml/zoo/internal/launcher"
)

// mpiComm is the Communicator over MPI_COMM_WORLD. MPI is initialized
// with MPI_THREAD_SERIALIZED: mu keeps calls one at a time.
type mpiComm struct {
	mu         sync.Mutex
	rank, size int
}

func openMPI(w launcher.World) (Communicator, error) {
	if err := mpi.Init(); err != nil {
		return nil, err
	}
	r, err := mpi.Rank()
	if err != nil {
		return nil, err
	}
	s, err := mpi.Size()
	if err != nil {
		return nil, err
	}
	if r != w.Rank || s != w.Size {
		return nil, fmt.Errorf("MPI says rank %d of %d, %s's environment rank %d of %d: one launcher per job", r, s, w.Launcher, w.Rank, w.Size)
	}
	return &mpiComm{rank: r, size: s}, nil
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

func (c *mpiComm) AllreduceSum(buf []float32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return mpi.AllreduceSumF32(buf)
}

func (c *mpiComm) AllreduceSum64(buf []float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return mpi.AllreduceSumF64(buf)
}

func (c *mpiComm) Broadcast(buf []byte, root int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return mpi.Bcast(buf, root)
}

func (c *mpiComm) Gather(send []byte, root int) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(send)))
	var lens []byte
	if c.rank == root {
		lens = make([]byte, 8*c.size)
	}
	if err := mpi.Gather(n[:], lens, root); err != nil {
		return nil, err
	}
	if c.rank != root {
		return nil, mpi.Gatherv(send, nil, nil, nil, root)
	}
	counts := make([]int, c.size)
	displs := make([]int, c.size)
	total := 0
	for r := range counts {
		counts[r] = int(binary.LittleEndian.Uint64(lens[8*r:]))
		displs[r] = total
		total += counts[r]
	}
	recv := make([]byte, total)
	if err := mpi.Gatherv(send, recv, counts, displs, root); err != nil {
		return nil, err
	}
	out := make([][]byte, c.size)
	for r := range out {
		out[r] = recv[displs[r] : displs[r]+counts[r] : displs[r]+counts[r]]
	}
	return out, nil
}

func (c *mpiComm) Barrier() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return mpi.Barrier()
}

func (c *mpiComm) Abort(code int) { _ = mpi.Abort(code) }

func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return mpi.Finalize()
}
