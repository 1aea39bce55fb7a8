// Package testplugins holds plugins that exist only to be run by zoo's tests
// as real subprocesses: one serving two models, one that crashes mid-call,
// one speaking another protocol version, one that describes no models, one
// that hangs in Describe, one reporting an older protocol minor. Build
// helpers live in testplugins.go.
package testplugins
