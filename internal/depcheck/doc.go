// Package depcheck holds, as a test, the dependency rules of DEVELOPERS.md:
// which zoo packages may import which. It has no code of its own.
package depcheck
