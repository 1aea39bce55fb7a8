package dist

import (
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{10, 2}, {11, 2}, {3, 4}, {128, 8}, {0, 3}} {
		next := 0
		for r := 0; r < tc.size; r++ {
			lo, hi := Split(tc.n, r, tc.size)
			if lo != next || hi < lo || hi-lo > tc.n/tc.size+1 {
				t.Fatalf("Split(%d, %d, %d) = [%d, %d), previous ended at %d", tc.n, r, tc.size, lo, hi, next)
			}
			next = hi
		}
		if next != tc.n {
			t.Errorf("Split(%d, ., %d) covers %d items", tc.n, tc.size, next)
		}
	}
}

func TestWorldFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		env  func(string) string
		want World
		err  string
	}{
		{env(), World{Size: 1}, ""},
		{env("OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "2"), World{Rank: 1, Size: 2, Launcher: "mpirun (Open MPI)"}, ""},
		{env("SLURM_PROCID", "3", "SLURM_NTASKS", "8"), World{Rank: 3, Size: 8, Launcher: "Slurm"}, ""},
		{env("PMIX_RANK", "0", "PMIX_SIZE", "4", "SLURM_PROCID", "3", "SLURM_NTASKS", "8"), World{Rank: 0, Size: 4, Launcher: "PMIx"}, ""},
		{env("OMPI_COMM_WORLD_RANK", "2", "OMPI_COMM_WORLD_SIZE", "2"), World{}, `OMPI_COMM_WORLD_RANK="2"`},
	} {
		got, err := WorldFromEnv(tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("WorldFromEnv: err %v, want one naming %s", err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("WorldFromEnv = %+v, %v; want %+v", got, err, tc.want)
		}
	}
}

func TestLocal(t *testing.T) {
	var c Communicator = Local{}
	buf := []float32{1, 2}
	if err := c.AllreduceSum(buf); err != nil || buf[0] != 1 || buf[1] != 2 || c.Rank() != 0 || c.Size() != 1 {
		t.Errorf("Local: %v %v rank %d size %d", buf, err, c.Rank(), c.Size())
	}
	g, err := c.Gather([]byte("x"), 0)
	if err != nil || len(g) != 1 || string(g[0]) != "x" {
		t.Errorf("Local.Gather = %q, %v", g, err)
	}
}
