// Package pickle is zoo's one Python pickle codec: Decode runs the pickle
// machine (protocols 0 to 5, the memo, frames) over bytes in memory and
// Marshal writes a value tree exactly as CPython's pickle.dumps does.
//
// Decoding never imports or calls anything by name. A GLOBAL is looked
// up in the Decoder's allow-list, which each use declares for itself
// (weights/ for numpy arrays, video/ for Python 3 bytes, host/results
// for nothing at all); any other global fails the decode. Every length
// read from the stream is checked against the bytes left before anything
// is allocated, and the stack, the marks and the memo are bounded by the
// input's size.
//
// It imports only the standard library, so that weights/ (stdlib only)
// may use it; internal/depcheck checks both.
package pickle
