package registry

import (
	"debug/buildinfo"
	"fmt"
	"runtime/debug"
)

// Build is where a Go binary says it came from: the build info the go
// command embeds in every binary it links (debug/buildinfo).
type Build struct {
	Module   string // the main module's path
	Version  string // the main module's version; "(devel)" for a build in a checkout the go command did not stamp
	Revision string // vcs.revision, when the go command stamped one
}

func buildOf(bi *debug.BuildInfo) Build {
	b := Build{Module: bi.Main.Path, Version: bi.Main.Version}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			b.Revision = s.Value
		}
	}
	return b
}

// SelfBuild is the running zoo's own Build.
func SelfBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{}
	}
	return buildOf(bi)
}

// ReadBuild reads the Build of the executable at path without running it.
func ReadBuild(path string) (Build, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return Build{}, err
	}
	return buildOf(bi), nil
}

// Matches reports whether o was built from b's module at b's version: the
// same VCS revision when b has one, else the same module version. A zero
// b (no build info) matches nothing.
func (b Build) Matches(o Build) bool {
	if b.Module == "" || o.Module != b.Module {
		return false
	}
	if b.Revision != "" {
		return o.Revision == b.Revision
	}
	return o.Revision == "" && o.Version == b.Version
}

func (b Build) String() string {
	s := b.Module + " " + b.Version
	if b.Revision != "" {
		r := b.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		s += " (revision " + r + ")"
	}
	return s
}

// mismatch says why o is not a build of b, for the user.
func (b Build) mismatch(o Build, err error) string {
	switch {
	case err != nil:
		return "it is not a Go binary with build info"
	case b.Module == "":
		return "this zoo has no build info to compare it with"
	case o.Module != b.Module:
		return fmt.Sprintf("it was built from module %s, not zoo's %s", o.Module, b.Module)
	}
	return fmt.Sprintf("it was built from %s, this zoo from %s", o, b)
}
