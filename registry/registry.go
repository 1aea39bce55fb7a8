package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/sdk"

	"github.com/zoo-ml/zoo/internal/fsx"
	"github.com/zoo-ml/zoo/internal/procenv"
)

// Prefix starts every plugin executable's name.
const Prefix = "zoo-plugin-"

// bundledPins is "zoo-plugin-a=HEX,zoo-plugin-b=HEX", set at link time by the
// Makefile for the plugins it builds beside zoo.
var bundledPins string

// Sources of a plugin, in lookup order.
const (
	SourceBundled = "bundled"  // the zoo binary's directory
	SourcePath    = "path"     // $ZOO_PLUGIN_PATH
	SourceHome    = "home"     // $ZOO_HOME/plugins
	SourceInPlace = "in place" // pinned where it is by `zoo plugins install --in-place`, in no directory above
)

// Where a plugin's pin came from (Plugin.PinFrom).
const (
	PinBuild     = "build"      // `make` linked the sha256 into zoo
	PinLock      = "lock"       // `zoo plugins install` wrote it in the lock file
	PinSameBuild = "same build" // beside zoo, a Go build of zoo's own module at zoo's version: pinned to its sha256 as found
)

// Plugin is one plugin executable found on disk.
type Plugin struct {
	Name   string // zoo-plugin-NAME
	Path   string
	Source string
	// Pin is the sha256 the file must have to be run; nil: zoo never runs
	// it, and Unpinned says why.
	Pin []byte
	// PinFrom is PinBuild, PinLock, PinSameBuild or "".
	PinFrom  string
	Unpinned string
	// Changed is the file's sha256 when it differs from Pin.
	Changed []byte
}

// PinCommand is the command that pins the file where it is, so that zoo
// runs it.
func (p Plugin) PinCommand() string { return "zoo plugins install --in-place " + p.Path }

// refusal is why zoo will not start p, or nil.
func (p Plugin) refusal() error {
	switch {
	case p.Pin == nil:
		return &UnpinnedError{Plugin: p}
	case p.Changed != nil:
		return changedError(p, p.Changed)
	}
	return nil
}

// UnpinnedError is a plugin zoo does not run: nothing pins it.
type UnpinnedError struct{ Plugin Plugin }

func (e *UnpinnedError) Error() string {
	p := e.Plugin
	why := p.Unpinned
	if why == "" {
		why = "nothing pins it"
	}
	return fmt.Sprintf("plugin %s: %s is not pinned, so zoo does not run it (%s): run `%s` to trust it", p.Name, p.Path, why, p.PinCommand())
}

func changedError(p Plugin, got []byte) error {
	how := fmt.Sprintf("if you rebuilt it on purpose, run `%s` to pin the new file", p.PinCommand())
	if p.PinFrom == PinBuild {
		how = fmt.Sprintf("rebuild zoo and its plugins together with `make`, or run `%s` to trust the new file", p.PinCommand())
	}
	return fmt.Errorf("plugin %s: %s changed since it was pinned (sha256 %s, pinned %s): %s",
		p.Name, p.Path, short(got), short(p.Pin), how)
}

// Registry is the set of places plugins are looked up in.
type Registry struct {
	ExeDir     string
	SearchPath []string
	Home       string
	Bundled    map[string][]byte
	Logger     hclog.Logger
	// CallTimeout bounds a plugin's Describe and Open ($ZOO_PLUGIN_TIMEOUT);
	// 0: sdk.DefaultCallTimeout.
	CallTimeout time.Duration
	// Self is zoo's own build: an unpinned plugin beside zoo is run only
	// when it is a build of the same module at the same version (a `go
	// install` of zoo and its plugins). Zero: no such plugin is run.
	Self Build
}

// FromEnv builds the registry the zoo binary uses: its own directory,
// $ZOO_PLUGIN_PATH and $ZOO_HOME (default ~/.zoo).
func FromEnv(logger hclog.Logger) (*Registry, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find zoo's own directory: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	home := os.Getenv("ZOO_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("find the home directory (set ZOO_HOME): %w", err)
		}
		home = filepath.Join(h, ".zoo")
	}
	var sp []string
	for _, d := range filepath.SplitList(os.Getenv("ZOO_PLUGIN_PATH")) {
		if d != "" {
			sp = append(sp, d)
		}
	}
	pins, err := parsePins(bundledPins)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	var timeout time.Duration
	if v := os.Getenv("ZOO_PLUGIN_TIMEOUT"); v != "" {
		timeout, err = time.ParseDuration(v)
		if err != nil || timeout <= 0 {
			return nil, fmt.Errorf("ZOO_PLUGIN_TIMEOUT=%s: want a positive duration such as 30s or 2m", v)
		}
	}
	return &Registry{ExeDir: filepath.Dir(exe), SearchPath: sp, Home: home, Bundled: pins, Logger: logger, CallTimeout: timeout, Self: SelfBuild()}, nil
}

func parsePins(s string) (map[string][]byte, error) {
	pins := map[string][]byte{}
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		name, hexsum, ok := strings.Cut(kv, "=")
		sum, err := hex.DecodeString(hexsum)
		if !ok || err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("zoo was built with a malformed plugin pin %q: rebuild with make", kv)
		}
		pins[name] = sum
	}
	return pins, nil
}

// PluginDir is where `zoo plugins install` copies plugins.
func (r *Registry) PluginDir() string { return filepath.Join(r.Home, "plugins") }

// Discover lists the plugin executables, first of each name only.
func (r *Registry) Discover() ([]Plugin, error) {
	lock, err := readLock(r.lockPath())
	if err != nil {
		return nil, err
	}
	type dir struct{ path, source string }
	dirs := []dir{{r.ExeDir, SourceBundled}}
	for _, d := range r.SearchPath {
		dirs = append(dirs, dir{d, SourcePath})
	}
	dirs = append(dirs, dir{r.PluginDir(), SourceHome})

	var out []Plugin
	seen := map[string]string{}
	for _, d := range dirs {
		entries, err := os.ReadDir(d.path)
		if errors.Is(err, fs.ErrNotExist) {
			if d.source == SourcePath {
				r.Logger.Warn("ZOO_PLUGIN_PATH names a directory that does not exist", "dir", d.path)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read plugin directory %s: %w", d.path, err)
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, Prefix) || e.IsDir() || strings.HasPrefix(name, ".") {
				continue
			}
			path := filepath.Join(d.path, name)
			if prev, ok := seen[name]; ok {
				r.Logger.Debug("plugin shadowed", "plugin", name, "used", prev, "ignored", path)
				continue
			}
			seen[name] = path
			p := Plugin{Name: name, Path: path, Source: d.source}
			if l, ok := lock.Plugins[name]; ok && samePath(l.Path, path) {
				sum, err := hex.DecodeString(l.SHA256)
				if err != nil || len(sum) != sha256.Size {
					return nil, fmt.Errorf("lock file %s: malformed sha256 for %s: run `%s`", r.lockPath(), name, p.PinCommand())
				}
				p.Pin, p.PinFrom = sum, PinLock
			} else if sum, ok := r.Bundled[name]; ok && d.source == SourceBundled {
				p.Pin, p.PinFrom = sum, PinBuild
			}
			r.check(&p)
			out = append(out, p)
		}
	}
	// A file pinned where it is, outside every directory above, is found
	// through its lock entry: `zoo plugins install --in-place PATH` is the
	// one step that makes a plugin runnable, with no ZOO_PLUGIN_PATH.
	names := make([]string, 0, len(lock.Plugins))
	for name := range lock.Plugins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l := lock.Plugins[name]
		if _, ok := seen[name]; ok || !strings.HasPrefix(name, Prefix) || filepath.Base(l.Path) != name {
			continue
		}
		if _, err := os.Stat(l.Path); err != nil {
			r.Logger.Warn(fmt.Sprintf("plugin %s was pinned at %s, which is gone: run `zoo plugins install --in-place` on its new path", name, l.Path))
			continue
		}
		sum, err := hex.DecodeString(l.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("lock file %s: malformed sha256 for %s: run `zoo plugins install --in-place %s`", r.lockPath(), name, l.Path)
		}
		seen[name] = l.Path
		p := Plugin{Name: name, Path: l.Path, Source: SourceInPlace, Pin: sum, PinFrom: PinLock}
		r.check(&p)
		out = append(out, p)
	}
	return out, nil
}

// check hashes p's file: a pinned file that differs from its pin is
// marked Changed; an unpinned one beside zoo is pinned as found when it is
// a build of zoo's own module at zoo's version. Nothing is run.
func (r *Registry) check(p *Plugin) {
	if p.Pin == nil && p.Source != SourceBundled {
		p.Unpinned = "a plugin outside zoo's own directory must be pinned"
		return
	}
	if p.Pin == nil {
		b, err := ReadBuild(p.Path)
		if err != nil || !r.Self.Matches(b) {
			p.Unpinned = r.Self.mismatch(b, err)
			return
		}
	}
	sum, err := fsx.SHA256(p.Path)
	if err != nil {
		// Launch says what is wrong with the file.
		return
	}
	switch {
	case p.Pin == nil:
		p.Pin, p.PinFrom = sum, PinSameBuild
	case !bytes.Equal(sum, p.Pin):
		p.Changed = sum
	}
}

// samePath compares two paths by their absolute, symlink-free directories
// and their file names.
func samePath(a, b string) bool {
	ca, err1 := canonical(a)
	cb, err2 := canonical(b)
	return err1 == nil && err2 == nil && ca == cb
}

func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(abs)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// Launch checks a plugin file and starts it.
func (r *Registry) Launch(ctx context.Context, p Plugin) (*sdk.Client, error) {
	fi, err := os.Stat(p.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", p.Name, err)
	}
	if fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("plugin %s: %s is not executable: run `chmod +x %s`", p.Name, p.Path, p.Path)
	}
	if p.Pin == nil {
		return nil, &UnpinnedError{Plugin: p}
	}
	c, err := sdk.Launch(ctx, sdk.LaunchConfig{Path: p.Path, SHA256: p.Pin, Logger: r.Logger, CallTimeout: r.CallTimeout, StartTimeout: r.CallTimeout,
		Env: procenv.Plugin(os.Environ())})
	if err != nil {
		var le *sdk.LaunchError
		if errors.As(err, &le) && le.Kind == "checksum" {
			got, _ := fsx.SHA256(p.Path)
			return nil, changedError(p, got)
		}
		return nil, err
	}
	return c, nil
}

func short(sum []byte) string {
	h := hex.EncodeToString(sum)
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Model is a model and the plugin that serves it.
type Model struct {
	Info   sdk.ModelInfo
	Plugin Plugin
	Minor  uint32
	// Shadowed lists the plugins, found later, that also serve a model of
	// this name and are ignored for it: the first plugin found wins.
	Shadowed []Plugin
	// client is the plugin Lookup started to ask it, kept for Start.
	client *sdk.Client
}

// Release stops the plugin Lookup kept running for m, unless Start took
// it. It is safe to call more than once.
func (m *Model) Release() {
	if m.client != nil {
		m.client.Kill()
		m.client = nil
	}
}

// Problem is a plugin that could not be described, or that zoo does not
// run (an *UnpinnedError).
type Problem struct {
	Plugin Plugin
	Err    error
}

// Models returns every model of every plugin zoo may run, asking each
// plugin only when the describe cache holds no answer for its file (a
// failure it holds is reported again, not retried). Plugins that fail, and
// plugins zoo does not run, are returned as problems; the others still
// count.
func (r *Registry) Models(ctx context.Context) ([]Model, []Problem, error) {
	return r.models(ctx, false)
}

// Survey is Models for `zoo list`: a plugin whose Describe failed before
// is asked again.
func (r *Registry) Survey(ctx context.Context) ([]Model, []Problem, error) {
	return r.models(ctx, true)
}

func (r *Registry) models(ctx context.Context, retry bool) ([]Model, []Problem, error) {
	plugins, err := r.Discover()
	if err != nil {
		return nil, nil, err
	}
	var models []Model
	var problems []Problem
	owner := map[string]int{} // lower-case name -> index in models
	for _, p := range plugins {
		minor, infos, _, err := r.describe(ctx, p, retry, false)
		if err != nil {
			problems = append(problems, Problem{p, err})
			continue
		}
		for _, mi := range infos {
			key := strings.ToLower(mi.Name)
			if i, ok := owner[key]; ok {
				prev := &models[i]
				r.Logger.Warn(fmt.Sprintf("model %s is served by %s and %s: using %s (found first), ignoring %s",
					mi.Name, prev.Plugin.Path, p.Path, prev.Plugin.Name, p.Name))
				prev.Shadowed = append(prev.Shadowed, p)
				continue
			}
			owner[key] = len(models)
			models = append(models, Model{Info: mi, Plugin: p, Minor: minor})
		}
	}
	sort.SliceStable(models, func(i, j int) bool {
		return strings.ToLower(models[i].Info.Name) < strings.ToLower(models[j].Info.Name)
	})
	return models, problems, nil
}

// Lookup returns the model called name (case-insensitively) and the first
// plugin, in lookup order, that serves it. It asks plugins in that order
// and stops at the one that serves it, each from the describe cache when
// it can; a plugin whose Describe failed before is not asked again. With
// keep, a plugin that had to be started to answer is kept running in the
// Model for Start, so that a run starts its plugin once; call Release when
// done. Problems are the plugins skipped on the way.
func (r *Registry) Lookup(ctx context.Context, name string, keep bool) (Model, []Problem, error) {
	plugins, err := r.Discover()
	if err != nil {
		return Model{}, nil, err
	}
	var models []Model
	var problems []Problem
	look := func(p Plugin, retry bool) (Model, bool) {
		minor, infos, c, err := r.describe(ctx, p, retry, keep)
		if err != nil {
			problems = append(problems, Problem{p, err})
			return Model{}, false
		}
		for _, mi := range infos {
			if strings.EqualFold(mi.Name, name) {
				return Model{Info: mi, Plugin: p, Minor: minor, client: c}, true
			}
			models = append(models, Model{Info: mi, Plugin: p, Minor: minor})
		}
		if c != nil {
			c.Kill()
		}
		return Model{}, false
	}
	for _, p := range plugins {
		if m, ok := look(p, false); ok {
			return m, problems, nil
		}
	}
	// No plugin that answered serves it: before calling the model unknown,
	// ask again the plugins whose failure the cache remembered, as it may
	// have passed (a timeout under load).
	first := problems
	problems = nil
	for _, pr := range first {
		if !errors.Is(pr.Err, errRemembered) {
			problems = append(problems, pr)
		} else if m, ok := look(pr.Plugin, true); ok {
			return m, problems, nil
		}
	}
	_, err = Find(models, name)
	return Model{}, problems, err
}

// Start returns m's plugin running: the process Lookup kept, or a new one.
func (r *Registry) Start(ctx context.Context, m *Model) (*sdk.Client, error) {
	if c := m.client; c != nil && !c.Exited() {
		m.client = nil
		return c, nil
	}
	m.Release()
	return r.Launch(ctx, m.Plugin)
}

// errRemembered marks a failure the describe cache answered with.
var errRemembered = errors.New("remembered from an earlier run")

// describe returns what p serves: the describe cache's answer for p's
// file, else p's own, which is then cached. retry asks again a plugin
// whose failure is cached. With keep, the plugin started to answer is
// returned running (nil when the cache answered).
func (r *Registry) describe(ctx context.Context, p Plugin, retry, keep bool) (uint32, []sdk.ModelInfo, *sdk.Client, error) {
	if err := p.refusal(); err != nil {
		return 0, nil, nil, err
	}
	if e, ok := r.readCache(p.Pin); ok && (e.Error == "" || !retry) {
		if e.Error != "" {
			return 0, nil, nil, fmt.Errorf("%s (%w; `zoo list` asks the plugin again)", e.Error, errRemembered)
		}
		r.noteMinor(p, e.Minor)
		return e.Minor, e.Models, nil, nil
	}
	c, err := r.Launch(ctx, p)
	if err != nil {
		var le *sdk.LaunchError
		if errors.As(err, &le) && (le.Kind == "handshake" || le.Kind == "version") && ctx.Err() == nil {
			// The file itself is wrong: it will be as wrong next time.
			r.writeCache(p.Pin, cacheEntry{Error: err.Error()})
		}
		return 0, nil, nil, err
	}
	minor, infos, err := c.Describe(ctx)
	switch {
	case err != nil:
		err = fmt.Errorf("plugin %s: describe: %w", p.Name, err)
	case len(infos) == 0:
		err = fmt.Errorf("plugin %s describes no models", p.Name)
	}
	if err != nil {
		c.Kill()
		if ctx.Err() == nil {
			r.writeCache(p.Pin, cacheEntry{Error: err.Error()})
		}
		return 0, nil, nil, err
	}
	r.writeCache(p.Pin, cacheEntry{Minor: minor, Models: infos})
	r.noteMinor(p, minor)
	if !keep {
		c.Kill()
		c = nil
	}
	return minor, infos, c, nil
}

func (r *Registry) noteMinor(p Plugin, minor uint32) {
	if lack := sdk.FeaturesAfter(minor); len(lack) > 0 {
		r.Logger.Debug(fmt.Sprintf("plugin %s speaks protocol %d.%d, older than zoo's %d.%d: it lacks %s",
			p.Name, sdk.ProtocolVersion, minor, sdk.ProtocolVersion, sdk.ProtocolMinor, strings.Join(lack, "; ")))
	}
}

// ErrUnknownModel is wrapped by Find when no plugin serves the name.
var ErrUnknownModel = errors.New("unknown model")

// Find returns the model of that name, matched case-insensitively.
func Find(models []Model, name string) (Model, error) {
	var names []string
	for _, m := range models {
		if strings.EqualFold(m.Info.Name, name) {
			return m, nil
		}
		names = append(names, m.Info.Name)
	}
	if len(names) == 0 {
		return Model{}, fmt.Errorf("%w %q: no plugins found (build them with `make`, or set ZOO_PLUGIN_PATH)", ErrUnknownModel, name)
	}
	slices.Sort(names)
	return Model{}, fmt.Errorf("%w %q: known models are %s (see `zoo list`)", ErrUnknownModel, name, strings.Join(names, ", "))
}
