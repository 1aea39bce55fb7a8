package tsm

import (
	"context"
	"fmt"
	"iter"
	"sync"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/video"
)

// shareSource is a train list read data-parallel: of every global batch
// this rank decodes only its share (dist.Split of the batch, in rank
// order). The global batch is the one one process reads: the first
// batch readable clips of the epoch's order from the batch's start. A
// clip that fails to read moves the later clips up, across the ranks'
// boundaries, so the ranks agree on which clips failed before they fix
// their shares: each decodes the share it would have if no unknown clip
// failed, then one allreduce over the batch's window of the order tells
// every rank the failures; a round with none new fixes the batch (one
// round, one small allreduce per step without bad videos). Decoding is a
// function of (seed, epoch, index), so which rank decodes a clip does not
// change it. The next batch's share is decoded while this one trains.
type shareSource struct {
	r       *video.Reader
	items   []video.Item
	batch   int // the global batch
	comm    dist.Communicator
	workers int
	warn    func(path string, err error)
}

func (v *shareSource) count() (int, int) {
	n := v.r.Len()
	return n / v.batch, n / v.batch * v.batch
}

func (v *shareSource) batchSize() int { return v.batch }

// load is one clip's decode, started once.
type load struct {
	done chan struct{}
	s    *video.Sample
	err  error
}

func (v *shareSource) epoch(ctx context.Context, epoch, start int) iter.Seq2[batch, error] {
	return func(yield func(batch, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		order := v.r.Order(epoch)
		rank, size := v.comm.Rank(), v.comm.Size()
		lo, hi := dist.Split(v.batch, rank, size)
		sem := make(chan struct{}, max(v.workers, 1))
		loads := map[int]*load{} // by position in order
		get := func(pos int) *load {
			if l, ok := loads[pos]; ok {
				return l
			}
			l := &load{done: make(chan struct{})}
			loads[pos] = l
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(l.done)
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					l.err = ctx.Err()
					return
				}
				defer func() { <-sem }()
				l.s, l.err = v.r.Load(ctx, order[pos], epoch)
			}()
			return l
		}
		prefetch := func(p int) {
			for j := lo; j < hi && p+j < len(order); j++ {
				get(p + j)
			}
		}
		bad := map[int]bool{}
		p := max(start, 0)
		prefetch(p)
		for {
			var good []int
			for {
				good = good[:0]
				for q := p; q < len(order) && len(good) < v.batch; q++ {
					if !bad[q] {
						good = append(good, q)
					}
				}
				if len(good) < v.batch {
					return // the last partial batch is dropped, as one process drops it
				}
				// fails[i] is 1 + the rank that found position p+i
				// unreadable; the last entry counts the ranks that stop
				// (interrupted): every rank takes part in the exchange and
				// stops at the same batch (classifier.ErrStopped).
				fails := make([]float64, good[len(good)-1]-p+2)
				for _, q := range good[lo:hi] {
					l := get(q)
					<-l.done // a cancelled ctx ends the decode early
					if ctx.Err() != nil {
						fails[len(fails)-1] = 1
						break
					}
					if l.err != nil {
						fails[q-p] = float64(rank + 1)
					}
				}
				if err := v.comm.AllreduceSum64(fails); err != nil {
					yield(batch{}, fmt.Errorf("exchanging the clips that failed to read: %w", err))
					return
				}
				if fails[len(fails)-1] > 0 {
					yield(batch{}, classifier.ErrStopped)
					return
				}
				fails = fails[:len(fails)-1]
				fresh := false
				for i, f := range fails {
					if f == 0 || bad[p+i] {
						continue
					}
					bad[p+i], fresh = true, true
					path := v.items[order[p+i]].Path
					if by := int(f) - 1; by == rank {
						v.warn(path, loads[p+i].err)
					} else if rank == 0 {
						v.warn(path, fmt.Errorf("rank %d could not read it (its log says why)", by))
					}
				}
				if !fresh {
					break
				}
			}
			mine := good[lo:hi]
			clip := v.r.SampleLen()
			b := batch{data: make([]float32, len(mine)*clip), labels: make([]int, len(mine)), ids: make([]string, len(mine)),
				next: good[len(good)-1] + 1, global: v.batch}
			for j, q := range mine {
				s := loads[q].s
				copy(b.data[j*clip:], s.Data)
				b.labels[j], b.ids[j] = s.Label, s.ID
			}
			for q := range loads {
				if q < b.next {
					delete(loads, q)
					b.decoded++ // every load below next was for this batch
				}
			}
			for q := range bad {
				if q < b.next {
					delete(bad, q)
				}
			}
			p = b.next
			prefetch(p) // decoded while this batch trains
			if !yield(b, nil) {
				return
			}
		}
	}
}
