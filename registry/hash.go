package registry

import (
	"crypto/sha256"
	"hash"
)

type hashWriter struct{ h hash.Hash }

func newHashWriter() *hashWriter                  { return &hashWriter{sha256.New()} }
func (w *hashWriter) Write(p []byte) (int, error) { return w.h.Write(p) }
func (w *hashWriter) Sum() []byte                 { return w.h.Sum(nil) }
