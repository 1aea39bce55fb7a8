package registry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zoo-ml/zoo/internal/fsx"
	"github.com/zoo-ml/zoo/sdk"
)

// lockFile is $ZOO_HOME/plugins.lock.json.
type lockFile struct {
	Plugins map[string]lockEntry `json:"plugins"`
}

type lockEntry struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

func (r *Registry) lockPath() string { return filepath.Join(r.Home, "plugins.lock.json") }

func readLock(path string) (lockFile, error) {
	l := lockFile{Plugins: map[string]lockEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("read lock file: %w", err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("lock file %s is not valid JSON (%v): fix or delete it, then re-run `zoo plugins install`", path, err)
	}
	if l.Plugins == nil {
		l.Plugins = map[string]lockEntry{}
	}
	return l, nil
}

func writeLock(path string, l lockFile) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return fsx.WriteBytes(path, fsx.Options{MkdirAll: true}, append(b, '\n'))
}

// Install copies a plugin executable into $ZOO_HOME/plugins, checks that it
// is a zoo plugin that describes at least one model, and pins its sha256 in
// the lock file. With inPlace it pins the file where it is (for a plugin in a
// $ZOO_PLUGIN_PATH directory) instead of copying it. It returns the installed
// plugin and its models.
//
// check, when not nil, is called for each model before anything is pinned:
// an error refuses the plugin (the host checks the declared config there).
func (r *Registry) Install(ctx context.Context, src string, inPlace bool, check func(Model) error) (Plugin, []Model, error) {
	name := filepath.Base(src)
	if !strings.HasPrefix(name, Prefix) {
		return Plugin{}, nil, fmt.Errorf("install %s: a plugin's file name must start with %q", src, Prefix)
	}
	in, err := os.Open(src)
	if err != nil {
		return Plugin{}, nil, fmt.Errorf("install plugin: %w", err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return Plugin{}, nil, fmt.Errorf("install %s: not a regular file", src)
	}
	h := newHashWriter()
	dst := filepath.Join(r.PluginDir(), name)
	if inPlace {
		if dst, err = filepath.Abs(src); err != nil {
			return Plugin{}, nil, fmt.Errorf("install %s: %w", src, err)
		}
		if _, err := io.Copy(h, in); err != nil {
			return Plugin{}, nil, fmt.Errorf("install %s: %w", src, err)
		}
	} else {
		err = fsx.WriteFile(dst, fsx.Options{Perm: 0o755, MkdirAll: true}, func(w io.Writer) error {
			_, err := io.Copy(io.MultiWriter(w, h), in)
			return err
		})
		if err != nil {
			return Plugin{}, nil, fmt.Errorf("install %s into %s: %w", src, r.PluginDir(), err)
		}
	}
	undo := func() {
		if !inPlace {
			os.Remove(dst)
		}
	}
	sum := h.Sum()
	p := Plugin{Name: name, Path: dst, Source: SourceHome, Pin: sum, PinFrom: PinLock}
	c, err := r.Launch(ctx, p)
	if err != nil {
		undo()
		var le *sdk.LaunchError
		if !inPlace && errors.As(err, &le) && (le.Kind == "handshake" || le.Kind == "start") {
			// A script that imports modules beside it, or a venv's python,
			// fails once copied away from them.
			return Plugin{}, nil, fmt.Errorf("install %s: %w; it was started from its copy in %s: a plugin that needs files beside it (modules, a venv) must be installed with `zoo plugins install --in-place %s`, or through a wrapper script that runs it where it is (docs/plugins.md)", src, err, r.PluginDir(), src)
		}
		return Plugin{}, nil, fmt.Errorf("install %s: %w", src, err)
	}
	minor, infos, err := c.Describe(ctx)
	c.Kill()
	if err == nil && len(infos) == 0 {
		err = errors.New("it describes no models")
	}
	if err != nil {
		undo()
		return Plugin{}, nil, fmt.Errorf("install %s: %w", src, err)
	}
	var models []Model
	for _, mi := range infos {
		models = append(models, Model{Info: mi, Plugin: p, Minor: minor})
	}
	for _, m := range models {
		if check == nil {
			break
		}
		if err := check(m); err != nil {
			undo()
			return Plugin{}, nil, fmt.Errorf("install %s: %w", src, err)
		}
	}
	r.writeCache(sum, cacheEntry{Minor: minor, Models: infos})
	lock, err := readLock(r.lockPath())
	if err != nil {
		return Plugin{}, nil, err
	}
	lock.Plugins[name] = lockEntry{Path: dst, SHA256: hex.EncodeToString(sum)}
	if err := writeLock(r.lockPath(), lock); err != nil {
		return Plugin{}, nil, fmt.Errorf("write lock file %s: %w", r.lockPath(), err)
	}
	return p, models, nil
}
