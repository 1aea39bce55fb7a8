// Package registry finds zoo's plugin executables, checks them against their
// pinned sha256, and knows which plugin serves which model.
//
// Plugins are executables named zoo-plugin-NAME, looked up in order in the
// zoo binary's own directory, then each directory of $ZOO_PLUGIN_PATH
// (colon-separated), then $ZOO_HOME/plugins (default ~/.zoo/plugins). The
// first file of a name wins; the first plugin to serve a model name wins.
//
// Pins: plugins built with zoo by `make` are pinned at build time
// (bundledPins, set by -ldflags); `zoo plugins install PATH` pins any other
// plugin in $ZOO_HOME/plugins.lock.json, the way Terraform's lock file pins
// providers. A plugin outside zoo's own directory must be pinned; a plugin
// beside an unpinned zoo (one built by plain `go install`) is trusted as
// installed together with it.
package registry
