package root

import (
	"runtime/debug"
	"strings"
)

// version is what `zoo --version` prints: the Makefile's Version (git
// describe, set with -X), else the build information the go command
// embeds.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(Version, bi)
}

// versionOf: `go install github.com/zoo-ml/zoo/cmd/zoo@v0.2.0` records the
// module version (v0.2.0) and no VCS data; `go build`/`go install` inside a
// checkout records a pseudo-version or "(devel)" and the revision, its
// time and whether the tree had changes (unless -buildvcs=false).
func versionOf(linked string, bi *debug.BuildInfo) string {
	if linked != "dev" || bi == nil {
		return linked
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		if v == "(devel)" {
			return "dev"
		}
		return v
	}
	var b strings.Builder
	b.WriteString(v)
	b.WriteString(" (revision ")
	b.WriteString(rev)
	if modified {
		b.WriteString(", modified")
	}
	if at != "" {
		b.WriteString(", ")
		b.WriteString(at)
	}
	b.WriteString(")")
	return b.String()
}
