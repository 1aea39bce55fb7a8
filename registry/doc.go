// Package registry finds zoo's plugin executables, decides which of them zoo
// may run, and knows which plugin serves which model.
//
// Plugins are executables named zoo-plugin-NAME, looked up in order in the
// zoo binary's own directory, then each directory of $ZOO_PLUGIN_PATH
// (colon-separated), then $ZOO_HOME/plugins (default ~/.zoo/plugins). The
// first file of a name wins; the first plugin to serve a model name wins.
//
// Trust: zoo runs a file only with a sha256 pin, checked before it runs.
// Plugins built with zoo by `make` are pinned at build time (bundledPins,
// set by -ldflags); `zoo plugins install [--in-place] PATH` pins any other
// in $ZOO_HOME/plugins.lock.json, the way Terraform's lock file pins
// providers. Beside zoo, an unpinned file is pinned as found when its
// embedded Go build info (debug/buildinfo) names zoo's own module at zoo's
// own VCS revision, or at zoo's module version when zoo has no revision: a
// `go install` of zoo and its plugins works without pins, a stranger in
// $GOBIN is never run. Anything else is listed as unpinned with the command
// that pins it; Discover reads files, it runs none.
//
// Describe cache: what a plugin serves is stored under its file's sha256
// in $ZOO_HOME/cache/describe, so a command starts only the plugin it
// needs (Lookup stops at the first plugin serving the model) and a
// hung plugin costs its timeout once, not on every command.
package registry
