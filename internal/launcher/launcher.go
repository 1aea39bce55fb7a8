// Package launcher reads a job's rank and world size from the environment
// its launcher (mpirun, PMIx, Slurm) gives every process. It imports only
// the standard library, so that the host (which must run without MPI) and
// package dist share one reading.
package launcher

import (
	"fmt"
	"strconv"
)

// World is a launcher's view of the job, read from its environment.
type World struct {
	Rank, Size int
	// Launcher names where Rank and Size came from ("" for one process).
	Launcher string
}

// launcherVars: (rank, size) variable pairs, in the order they are trusted.
var launcherVars = [][3]string{
	{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "mpirun (Open MPI)"},
	{"PMIX_RANK", "PMIX_SIZE", "PMIx"},
	{"PMI_RANK", "PMI_SIZE", "PMI"},
	{"SLURM_PROCID", "SLURM_NTASKS", "Slurm"},
}

// FromEnv reads rank and world size from the launcher's environment
// (getenv is os.Getenv in production). With no launcher it is rank 0 of 1.
func FromEnv(getenv func(string) string) (World, error) {
	for _, v := range launcherVars {
		rs, ss := getenv(v[0]), getenv(v[1])
		if rs == "" || ss == "" {
			continue
		}
		r, err1 := strconv.Atoi(rs)
		s, err2 := strconv.Atoi(ss)
		if err1 != nil || err2 != nil || s < 1 || r < 0 || r >= s {
			return World{}, fmt.Errorf("launcher environment: %s=%q %s=%q is not a rank in a world size: fix the launcher's environment", v[0], rs, v[1], ss)
		}
		return World{Rank: r, Size: s, Launcher: v[2]}, nil
	}
	return World{Size: 1}, nil
}
