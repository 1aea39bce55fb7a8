package testplugins

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Names of the test plugins, each a directory beside this file.
var Names = []string{"two", "crash", "badversion", "empty", "hang", "oldminor"}

// Build compiles zoo (when withZoo) and every test plugin into dir as
// zoo-plugin-NAME, and returns dir. It is called from TestMain.
func Build(dir string, withZoo bool) error {
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Dir(self)
	root := filepath.Join(src, "..", "..")
	for _, n := range Names {
		out := filepath.Join(dir, "zoo-plugin-"+n)
		cmd := exec.Command("go", "build", "-o", out, "./internal/testplugins/"+n)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build test plugin %s: %v\n%s", n, err, b)
		}
	}
	if withZoo {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "zoo"), "./cmd/zoo")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build zoo: %v\n%s", err, b)
		}
	}
	return nil
}

// Children lists the live child processes of this process (by pid), for
// tests that assert no plugin outlives them.
func Children() []int {
	me := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// stat is "pid (comm) state ppid ...", and comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == me {
			kids = append(kids, pid)
		}
	}
	return kids
}
