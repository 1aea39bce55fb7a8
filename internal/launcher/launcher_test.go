package launcher

import (
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
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
		got, err := FromEnv(tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("FromEnv: err %v, want one naming %s", err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("FromEnv = %+v, %v; want %+v", got, err, tc.want)
		}
	}
}
