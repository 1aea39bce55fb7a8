// Package cmdutil holds what every zoo command shares: the Factory that
// gives commands their IO streams, logger, plugin registry and weights
// store, typed exit codes, and the one place where errors become what the
// user reads.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/registry"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// Factory gives commands their dependencies, lazily.
type Factory struct {
	IO       *iostreams.IOStreams
	LogLevel string
	logger   hclog.Logger
	reg      *registry.Registry
	// NewRegistry builds the plugin registry; tests replace it.
	NewRegistry func(hclog.Logger) (*registry.Registry, error)
	// WeightsMirror overrides $ZOO_WEIGHTS_MIRROR (`zoo weights --mirror`).
	// Offline has no flag: an --offline flag would also be set from
	// ZOO_OFFLINE by the root's env mapping, which parses booleans
	// differently from the store's ZOO_OFFLINE=1.
	WeightsMirror string
}

// New returns the Factory the zoo binary uses.
func New() *Factory {
	return &Factory{IO: iostreams.System(), LogLevel: "warn", NewRegistry: registry.FromEnv}
}

// Logger is the host's logger; plugin logs reappear in it under their name.
func (f *Factory) Logger() hclog.Logger {
	if f.logger == nil {
		f.logger = hclog.New(&hclog.LoggerOptions{
			Name:   "zoo",
			Level:  hclog.LevelFromString(f.LogLevel),
			Output: f.IO.ErrOut,
			Color:  hclog.ColorOff,
		})
	}
	return f.logger
}

// Registry returns the plugin registry.
func (f *Factory) Registry() (*registry.Registry, error) {
	if f.reg == nil {
		r, err := f.NewRegistry(f.Logger())
		if err != nil {
			return nil, err
		}
		f.reg = r
	}
	return f.reg, nil
}

// FindModel returns the model called name and the plugin serving it,
// starting no plugin the describe cache can answer for. Broken plugins met
// on the way are logged, not fatal.
func (f *Factory) FindModel(ctx context.Context, name string) (registry.Model, error) {
	return f.lookup(ctx, name, false)
}

// FindModelToRun is FindModel for a command that then runs the model: a
// plugin started to answer is kept in the Model for registry.Start, so the
// command starts it once. The caller must call m.Release.
func (f *Factory) FindModelToRun(ctx context.Context, name string) (registry.Model, error) {
	return f.lookup(ctx, name, true)
}

func (f *Factory) lookup(ctx context.Context, name string, keep bool) (registry.Model, error) {
	reg, err := f.Registry()
	if err != nil {
		return registry.Model{}, err
	}
	m, problems, err := reg.Lookup(ctx, name, keep)
	if err != nil {
		for _, p := range problems {
			f.Logger().Warn(p.Err.Error())
		}
		if len(problems) > 0 && errors.Is(err, registry.ErrUnknownModel) {
			return m, fmt.Errorf("%w; %d plugin(s) failed to start, first: %v", err, len(problems), problems[0].Err)
		}
		return m, err
	}
	f.WarnProblems(problems)
	return m, nil
}

// WarnProblems logs the plugins a command could not use. A stranger beside
// zoo (after `go install`, zoo's directory is $GOBIN) is reported by `zoo
// list`, not as a warning on every command.
func (f *Factory) WarnProblems(problems []registry.Problem) {
	for _, p := range problems {
		var ue *registry.UnpinnedError
		if errors.As(p.Err, &ue) {
			f.Logger().Info("plugin not run", "error", p.Err.Error())
			continue
		}
		f.Logger().Warn("plugin skipped", "error", p.Err.Error())
	}
}

// FlagError is a usage mistake: exit code 2.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf returns a *FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{fmt.Errorf(format, args...)}
}

// ErrInterrupted is returned after a clean stop on Ctrl-C.
var ErrInterrupted = errors.New("interrupted")

// ExitCode maps an error to the process's exit code.
func ExitCode(err error) int {
	var fe *FlagError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrInterrupted), errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &fe):
		return ExitUsage
	}
	return ExitError
}

// Message is the one line the user reads for err.
func Message(err error) string {
	msg := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	return "zoo: " + msg
}
