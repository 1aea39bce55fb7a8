package sdk

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// hostPoll is how often a plugin checks that its host is still there: well
// under the second a plugin may outlive its host.
const hostPoll = 200 * time.Millisecond

// ownedByHost is the plugin's half of the process-lifetime contract
// (docs/plugins.md, "Signals and process lifetime"). The host owns the
// signals: a terminal's Ctrl-C, `timeout`'s SIGTERM, a scheduler's SIGTERM
// or SIGHUP to every process of the job all mean "stop", and the host stops
// by saving through this plugin and then closing it, so the plugin must
// not die of them first. And the plugin never outlives its host: when its
// parent changes (the host died and the plugin was re-parented), it exits.
// The host kills the plugin on Linux as well (a parent-death signal); this
// covers other systems and hosts that do not.
func ownedByHost() {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	host := os.Getppid()
	go func() {
		for range time.Tick(hostPoll) {
			if os.Getppid() != host {
				fmt.Fprintf(os.Stderr, "zoo plugin: host (pid %d) is gone; exiting\n", host)
				os.Exit(3)
			}
		}
	}()
}
