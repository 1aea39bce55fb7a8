package root

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/sdk"
)

// stopSignals are what a user, `timeout`, Slurm, systemd and Kubernetes
// send to stop a job. zoo owns them (its plugins ignore them, and run in a
// process group of their own): the first cancels the command's context, so
// training finishes the step in flight, saves a checkpoint and exits with
// 128+signal; the second kills the plugins, so a plugin that does not stop
// cannot hang zoo; the third exits at once.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// signalWatch turns stop signals into a cancelled context.
type signalWatch struct {
	ch   chan os.Signal
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	first syscall.Signal // 0 until one arrived
}

// watchSignals returns ctx cancelled on the first stop signal, and the
// watch, whose exitCode says how the command ended.
func watchSignals(parent context.Context, errOut io.Writer) (context.Context, *signalWatch) {
	ctx, cancel := context.WithCancel(parent)
	w := &signalWatch{ch: make(chan os.Signal, 3), done: make(chan struct{})}
	for _, s := range stopSignals {
		// A signal ignored at start stays ignored: `nohup zoo ...` must
		// survive its terminal, and a shell's background job its Ctrl-C
		// (Notify would install a handler over the inherited SIG_IGN).
		if !signal.Ignored(s) {
			signal.Notify(w.ch, s)
		}
	}
	panicOnUSR1()
	go func() {
		n := 0
		for {
			select {
			case <-w.done:
				return
			case s := <-w.ch:
				n++
				sig := s.(syscall.Signal)
				name := signalName(sig)
				switch n {
				case 1:
					w.mu.Lock()
					w.first = sig
					w.mu.Unlock()
					fmt.Fprintf(errOut, "%s: stopping after the step in flight (send it again to kill the plugins)\n", name)
					cancel()
				case 2:
					if names := sdk.KillAll("after a second " + name); len(names) > 0 {
						fmt.Fprintf(errOut, "%s again: killed %s\n", name, strings.Join(names, ", "))
					}
				default:
					fmt.Fprintf(errOut, "%s a third time: exiting now\n", name)
					sdk.KillAll("after a third " + name)
					os.Exit(128 + int(sig))
				}
			}
		}
	}()
	return ctx, w
}

func (w *signalWatch) stop() {
	w.once.Do(func() {
		signal.Stop(w.ch)
		close(w.done)
	})
}

// exitCode maps an interrupted command's exit code to the signal's
// convention (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a shell and a
// scheduler expect; other codes stand.
func (w *signalWatch) exitCode(code int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if code == cmdutil.ExitInterrupted && w.first != 0 {
		return 128 + int(w.first)
	}
	return code
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// panicOnUSR1 is a test hook: with ZOO_TEST_PANIC_ON_USR1=1, SIGUSR1 makes
// a goroutine of the host panic, so that the process dies as it would of a
// bug, without running the deferred Kill of its plugins.
// cmd/zoo/lifecycle_test.go checks that no plugin outlives it.
func panicOnUSR1() {
	if os.Getenv("ZOO_TEST_PANIC_ON_USR1") != "1" {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		<-ch
		panic("ZOO_TEST_PANIC_ON_USR1: SIGUSR1")
	}()
}
