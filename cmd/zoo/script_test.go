package main_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs testdata/script/*.txtar (DEVELOPERS.md, "CLI tests"):
// each a zoo command line and what it must print, in testscript's
// language, with two commands of zoo's:
//
//	zoo ARGS...   run TestMain's zoo (its bundled plugins beside it); with !
//	              it must fail; a Go panic on its stderr always fails
//	exitcode N    the last zoo's exit status was N
//
// Each script gets its own $ZOO_HOME and weights dir under $WORK, no
// $ZOO_PLUGIN_PATH and ZOO_OFFLINE=1, as zoo() gives a Go test.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("ZOO_HOME", filepath.Join(env.WorkDir, ".zoo"))
			env.Setenv("ZOO_WEIGHTS_DIR", filepath.Join(env.WorkDir, ".weights"))
			env.Setenv("ZOO_PLUGIN_PATH", "")
			env.Setenv("ZOO_OFFLINE", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"zoo": func(ts *testscript.TestScript, neg bool, args []string) {
				cmd := exec.Command(filepath.Join(binDir, "zoo"), args...)
				cmd.Dir = ts.Getenv("WORK")
				cmd.Env = envOf(ts)
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				ts.Stdout().Write(out.Bytes())
				ts.Stderr().Write(errb.Bytes())
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("zoo: %v", err)
				}
				if bytes.Contains(errb.Bytes(), []byte("goroutine ")) || bytes.Contains(errb.Bytes(), []byte("panic:")) {
					ts.Fatalf("zoo %v: a Go panic reached the user", args)
				}
				ts.Setenv("ZOO_EXIT", strconv.Itoa(code))
				if neg != (code != 0) {
					ts.Fatalf("zoo %v: exit status %d", args, code)
				}
			},
			"exitcode": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: exitcode N")
				}
				if got := ts.Getenv("ZOO_EXIT"); got != args[0] {
					ts.Fatalf("exit status %s, want %s", got, args[0])
				}
			},
		},
	})
}

// envOf is what zoo gets of the script's environment, as "K=V" pairs: the
// variables below that are set (an empty ZOO_<FLAG> would set its flag to
// ""), and ZOO_PLUGIN_PATH, empty. A script sets others with env only if
// they are listed here.
func envOf(ts *testscript.TestScript) []string {
	env := []string{"ZOO_PLUGIN_PATH=" + ts.Getenv("ZOO_PLUGIN_PATH")}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "ZOO_HOME", "ZOO_WEIGHTS_DIR", "ZOO_OFFLINE", "ZOO_PLUGIN_TIMEOUT", "ZOO_LOG_LEVEL", "ZOO_SHARED_DATA"} {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
