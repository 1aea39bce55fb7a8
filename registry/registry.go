package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/sdk"
)

// Prefix starts every plugin executable's name.
const Prefix = "zoo-plugin-"

// bundledPins is "zoo-plugin-a=HEX,zoo-plugin-b=HEX", set at link time by the
// Makefile for the plugins it builds beside zoo.
var bundledPins string

// Sources of a plugin, in lookup order.
const (
	SourceBundled = "bundled" // the zoo binary's directory
	SourcePath    = "path"    // $ZOO_PLUGIN_PATH
	SourceHome    = "home"    // $ZOO_HOME/plugins
)

// Plugin is one plugin executable found on disk.
type Plugin struct {
	Name   string // zoo-plugin-NAME
	Path   string
	Source string
	// Pin is the sha256 the file must have; nil for a trusted unpinned
	// bundled plugin.
	Pin []byte
	// PinFrom says where the pin came from: "build", "lock" or "".
	PinFrom string
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
	return &Registry{ExeDir: filepath.Dir(exe), SearchPath: sp, Home: home, Bundled: pins, Logger: logger, CallTimeout: timeout}, nil
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
					return nil, fmt.Errorf("lock file %s: malformed sha256 for %s: run `zoo plugins install %s`", r.lockPath(), name, path)
				}
				p.Pin, p.PinFrom = sum, "lock"
			} else if sum, ok := r.Bundled[name]; ok && d.source == SourceBundled {
				p.Pin, p.PinFrom = sum, "build"
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func samePath(a, b string) bool {
	ca, err1 := filepath.Abs(a)
	cb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && ca == cb
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
	if p.Pin == nil && p.Source != SourceBundled {
		return nil, fmt.Errorf("plugin %s: %s is not pinned: run `zoo plugins install %s` to trust it", p.Name, p.Path, p.Path)
	}
	c, err := sdk.Launch(ctx, sdk.LaunchConfig{Path: p.Path, SHA256: p.Pin, Logger: r.Logger, CallTimeout: r.CallTimeout})
	if err != nil {
		var le *sdk.LaunchError
		if errors.As(err, &le) && le.Kind == "checksum" {
			got, _ := fileSHA256(p.Path)
			how := fmt.Sprintf("if you rebuilt it on purpose, run `zoo plugins install %s` to pin the new file", p.Path)
			if p.PinFrom == "build" {
				how = fmt.Sprintf("rebuild zoo and its plugins together with `make`, or run `zoo plugins install %s` to pin the new file", p.Path)
			}
			return nil, fmt.Errorf("plugin %s: %s changed since it was pinned (sha256 %s, pinned %s): %s",
				p.Name, p.Path, short(got), short(p.Pin), how)
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

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// Model is a model and the plugin that serves it.
type Model struct {
	Info   sdk.ModelInfo
	Plugin Plugin
	Minor  uint32
	// Shadowed lists the plugins, found later, that also serve a model of
	// this name and are ignored for it: the first plugin found wins.
	Shadowed []Plugin
}

// Problem is a plugin that could not be described.
type Problem struct {
	Plugin Plugin
	Err    error
}

// Models launches every plugin, asks what it serves, and stops it again.
// Plugins that fail are returned as problems; the others still count.
func (r *Registry) Models(ctx context.Context) ([]Model, []Problem, error) {
	plugins, err := r.Discover()
	if err != nil {
		return nil, nil, err
	}
	var models []Model
	var problems []Problem
	owner := map[string]int{} // lower-case name -> index in models
	for _, p := range plugins {
		c, err := r.Launch(ctx, p)
		if err != nil {
			problems = append(problems, Problem{p, err})
			continue
		}
		minor, infos, err := c.Describe(ctx)
		c.Kill()
		if err != nil {
			problems = append(problems, Problem{p, fmt.Errorf("plugin %s: describe: %w", p.Name, err)})
			continue
		}
		if len(infos) == 0 {
			problems = append(problems, Problem{p, fmt.Errorf("plugin %s describes no models", p.Name)})
			continue
		}
		if lack := sdk.FeaturesAfter(minor); len(lack) > 0 {
			r.Logger.Debug(fmt.Sprintf("plugin %s speaks protocol %d.%d, older than zoo's %d.%d: it lacks %s",
				p.Name, sdk.ProtocolVersion, minor, sdk.ProtocolVersion, sdk.ProtocolMinor, strings.Join(lack, "; ")))
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
