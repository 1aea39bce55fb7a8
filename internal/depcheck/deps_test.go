package depcheck

import (
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

const mod = "github.com/zoo-ml/zoo/"

// stdlibOnly forbids every import path with a dot in its first element:
// anything outside the standard library.
const stdlibOnly = "<non-standard>"

// rules: for each package pattern, the import-path prefixes none of its
// packages may depend on (directly or not). A zoo package under internal/
// that itself imports only the standard library (internal/pickle,
// internal/fsx) is allowed everywhere, "stdlib only" packages included: it
// can bring no forbidden edge with it.
var rules = []struct {
	pkgs      string
	forbidden []string
}{
	{"sdk/...", []string{mod + "host", mod + "registry", mod + "weights", mod + "nn", mod + "video", mod + "plugins", mod + "dist", "gorgonia.org/"}},
	{"registry/...", []string{mod + "host", mod + "weights", mod + "nn", mod + "video", mod + "plugins", mod + "dist", "gorgonia.org/"}},
	// The MPI binding is the plugins' (and zoo-bench's): zoo itself must
	// run where libmpi is absent, so host/ never links it.
	{"dist/...", []string{stdlibOnly}},
	// host/ reaches video only through dataset, for `zoo data`
	// (TestHostVideoImports); video is pure Go over an ffmpeg child.
	{"host/...", []string{mod + "nn", mod + "plugins", mod + "dist", "gorgonia.org/"}},
	{"dataset/...", []string{mod + "host", mod + "sdk", mod + "registry", mod + "weights", mod + "nn", mod + "plugins", "gorgonia.org/"}},
	{"host/config", []string{mod}},
	// The server knows models through its Session interface: host/cmd/serve
	// starts the plugins.
	{"host/serve", []string{mod + "host/cmd", mod + "host/driver", mod + "registry", mod + "weights"}},
	{"host/results", []string{mod}},
	// Streams and progress: weights only for its download events.
	{"host/iostreams", []string{mod + "host/cmd", mod + "host/driver", mod + "host/results", mod + "host/serve", mod + "registry", mod + "sdk"}},
	{"weights/...", []string{stdlibOnly}},
	// The torch reader knows formats, not models: name maps stay in convert.
	{"weights/torch", []string{mod + "weights/convert"}},
	{"internal/pickle", []string{stdlibOnly}},
	{"internal/fsx", []string{stdlibOnly}},
	{"video/...", []string{mod, "gorgonia.org/"}},
	{"nn/...", []string{mod + "host", mod + "sdk", mod + "registry", mod + "plugins", mod + "video", mod + "cmd", mod + "dist"}},
}

func TestDependencyRules(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkgs, func(t *testing.T) {
			t.Parallel()
			deps, err := goListDeps("../../" + r.pkgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, dep := range violations(r.pkgs, r.forbidden, deps, stdlibInternal) {
				t.Errorf("%s depends on %s, which DEVELOPERS.md forbids", r.pkgs, dep)
			}
		})
	}
}

// violations returns the deps of pkgs that one of forbidden matches.
func violations(pkgs string, forbidden, deps []string, stdlibInternal func(string) bool) []string {
	var out []string
	self := strings.TrimSuffix(mod+pkgs, "/...")
	for _, dep := range deps {
		if dep == self || strings.HasPrefix(dep, self+"/") {
			continue
		}
		if strings.HasPrefix(dep, mod+"internal/") && stdlibInternal(dep) {
			continue
		}
		for _, f := range forbidden {
			first, _, _ := strings.Cut(dep, "/")
			if f == stdlibOnly && strings.Contains(first, ".") || strings.HasPrefix(dep, f) {
				out = append(out, dep)
				break
			}
		}
	}
	return out
}

func goListDeps(pattern string) ([]string, error) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pattern).CombinedOutput()
	if err != nil {
		return nil, &listError{pattern, err, string(out)}
	}
	return strings.Fields(string(out)), nil
}

type listError struct {
	pattern string
	err     error
	out     string
}

func (e *listError) Error() string {
	return "go list " + e.pattern + ": " + e.err.Error() + "\n" + e.out
}

var stdlibCache sync.Map // import path -> bool

// stdlibInternal reports whether the zoo package pkg imports only the
// standard library (a failing go list counts as no).
func stdlibInternal(pkg string) bool {
	if v, ok := stdlibCache.Load(pkg); ok {
		return v.(bool)
	}
	deps, err := goListDeps(pkg)
	ok := err == nil && !slices.ContainsFunc(deps, func(d string) bool {
		first, _, _ := strings.Cut(d, "/")
		return d != pkg && strings.Contains(first, ".")
	})
	stdlibCache.Store(pkg, ok)
	return ok
}

// TestViolations: the exception for stdlib-only internal packages lets
// nothing else through.
func TestViolations(t *testing.T) {
	isStd := func(p string) bool { return p == mod+"internal/pickle" }
	for _, tc := range []struct {
		name, pkgs string
		forbidden  []string
		deps, want []string
	}{
		{"stdlib only allows a stdlib-only internal package", "weights/...", []string{stdlibOnly},
			[]string{"os", mod + "weights", mod + "internal/pickle"}, nil},
		{"but not one that imports more", "weights/...", []string{stdlibOnly},
			[]string{mod + "internal/testplugins", mod + "sdk", "google.golang.org/grpc"},
			[]string{mod + "internal/testplugins", mod + "sdk", "google.golang.org/grpc"}},
		{"nor any other zoo package", "host/results", []string{mod},
			[]string{mod + "internal/pickle", mod + "weights"}, []string{mod + "weights"}},
		{"the package itself", "video/...", []string{mod}, []string{mod + "video", mod + "video/x"}, nil},
	} {
		if got := violations(tc.pkgs, tc.forbidden, tc.deps, isStd); !slices.Equal(got, tc.want) {
			t.Errorf("%s: violations = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestHostVideoImports: in host/, only host/cmd/data imports dataset, and
// no package imports video itself: the reader stays the plugins' and
// dataset's.
func TestHostVideoImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "../../host/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list host/...: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if imp == mod+"video" || strings.HasPrefix(imp, mod+"video/") {
				t.Errorf("%s imports %s; host/ reads videos only through dataset", f[0], imp)
			}
			if imp == mod+"dataset" && f[0] != mod+"host/cmd/data" {
				t.Errorf("%s imports dataset; only host/cmd/data does", f[0])
			}
		}
	}
}
