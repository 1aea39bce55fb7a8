// Package host is zoo's host side: the CLI (host/cmd/...), the generic
// train/test/infer driver (host/driver), configuration (host/config) and
// result files (host/results). It talks to models only through sdk clients
// and never imports a plugin or gorgonia.
package host
