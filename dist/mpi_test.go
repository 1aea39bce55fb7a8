//go:build mpi

package dist

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// MPIEnv is what Open MPI needs to run as root in a container (CI is root):
// mpirun refuses root without the first two; the vader transport's
// single-copy mechanism (CMA) needs ptrace rights a container lacks.
var MPIEnv = []string{
	"OMPI_ALLOW_RUN_AS_ROOT=1",
	"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
	"OMPI_MCA_btl_vader_single_copy_mechanism=none",
}

// underMPIRun runs this test binary's test name under `mpirun -np n` and
// returns its combined output and error; it fails the test when mpirun is
// missing (`make deps` installs openmpi-bin). Inside mpirun it returns
// ok=false: the caller then is a rank and does the test's work.
func underMPIRun(t *testing.T, n int) (out string, err error, launched bool) {
	t.Helper()
	if os.Getenv("OMPI_COMM_WORLD_SIZE") != "" {
		return "", nil, false
	}
	mpirun, lerr := exec.LookPath("mpirun")
	if lerr != nil {
		t.Fatalf("mpirun not found (%v): run `make deps` (Debian's openmpi-bin)", lerr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpirun, "-np", fmt.Sprint(n), "--oversubscribe",
		os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), MPIEnv...)
	b, err := cmd.CombinedOutput()
	return string(b), err, true
}

// TestMPICollectives runs every collective of the MPI Communicator on two
// real ranks under mpirun.
func TestMPICollectives(t *testing.T) {
	if out, err, launched := underMPIRun(t, 2); launched {
		if err != nil {
			t.Fatalf("mpirun -np 2: %v\n%s", err, out)
		}
		for _, want := range []string{"rank 0 of 2: ok", "rank 1 of 2: ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("mpirun output lacks %q:\n%s", want, out)
			}
		}
		return
	}
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, n := c.Rank(), c.Size()
	if _, ok := c.(*mpiComm); !ok || n != 2 {
		t.Fatalf("Open under mpirun -np 2 = %T of size %d", c, n)
	}
	f32 := []float32{float32(r), 1, float32(10 * r)}
	if err := c.AllreduceSum(f32); err != nil {
		t.Fatal(err)
	}
	if f32[0] != 1 || f32[1] != 2 || f32[2] != 10 {
		t.Errorf("rank %d: AllreduceSum = %v, want [1 2 10]", r, f32)
	}
	f64 := []float64{0.5 + float64(r), -1}
	if err := c.AllreduceSum64(f64); err != nil {
		t.Fatal(err)
	}
	if f64[0] != 2 || f64[1] != -2 {
		t.Errorf("rank %d: AllreduceSum64 = %v, want [2 -2]", r, f64)
	}
	b := make([]byte, 5)
	if r == 1 {
		copy(b, "hello")
	}
	if err := c.Broadcast(b, 1); err != nil {
		t.Fatal(err)
	}
	if string(b) != "hello" {
		t.Errorf("rank %d: Broadcast from 1 = %q", r, b)
	}
	// Different lengths per rank: Gatherv.
	got, err := c.Gather(bytes.Repeat([]byte{byte('a' + r)}, r+1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if r == 0 && (len(got) != 2 || string(got[0]) != "a" || string(got[1]) != "bb") {
		t.Errorf("rank 0: Gather = %q, want [a bb]", got)
	}
	if r == 1 && got != nil {
		t.Errorf("rank 1: Gather = %q, want nil", got)
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	if !t.Failed() {
		fmt.Printf("rank %d of %d: ok\n", r, n)
	}
}

// TestMPIAbort: one rank's Abort ends the other, blocked in a barrier
// that never completes, and mpirun exits non-zero.
func TestMPIAbort(t *testing.T) {
	if out, err, launched := underMPIRun(t, 2); launched {
		if err == nil {
			t.Fatalf("mpirun -np 2 with an aborting rank exited 0:\n%s", out)
		}
		if strings.Contains(out, "passed the barrier") {
			t.Errorf("rank 0 went past a barrier rank 1 never reached:\n%s", out)
		}
		// mpirun exits with the aborting rank's code.
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Errorf("mpirun: %v, want exit status 3 (rank 1's MPI_Abort code):\n%s", err, out)
		}
		return
	}
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	if c.Rank() == 1 {
		c.Abort(3)
	}
	_ = c.Barrier()
	fmt.Println("passed the barrier")
}
