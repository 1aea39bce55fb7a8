//go:build !onednn

package dnnl

// Available reports whether zoo was built with oneDNN (build tag onednn).
const Available = false
