package registry

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/zoo-ml/zoo/internal/fsx"
	"github.com/zoo-ml/zoo/sdk"
)

// cacheFormat is bumped when cacheEntry changes; entries of another format
// are ignored and rewritten. Entries written by a zoo of another protocol
// minor are ignored too (HostMinor): a newer sdk.ModelInfo may carry fields
// an older zoo's entry lacks.
const cacheFormat = 1 // the tests write format 1 entries by hand

// cacheEntry is a plugin's Describe answer, stored under the sha256 of its
// executable in $ZOO_HOME/cache/describe/<sha256>.json: the same file
// always answers the same, so zoo need not start it to know what it serves.
// A failed Describe is stored too (Error set), so a hung plugin costs its
// timeout once, not on every command; `zoo list` and `zoo plugins install`
// ask it again.
type cacheEntry struct {
	Format int    `json:"format"`
	SHA256 string `json:"sha256"`
	Minor  uint32 `json:"protocol_minor"`
	// HostMinor is the sdk.ProtocolMinor of the zoo that wrote the entry.
	HostMinor uint32          `json:"host_protocol_minor"`
	Models    []sdk.ModelInfo `json:"models,omitempty"`
	Error     string          `json:"error,omitempty"`
}

func (r *Registry) cacheDir() string { return filepath.Join(r.Home, "cache", "describe") }

func (r *Registry) cachePath(sum []byte) string {
	return filepath.Join(r.cacheDir(), hex.EncodeToString(sum)+".json")
}

// readCache returns the stored answer for the file of that sha256; ok is
// false when there is none or it cannot be read (it is then rewritten).
func (r *Registry) readCache(sum []byte) (e cacheEntry, ok bool) {
	b, err := os.ReadFile(r.cachePath(sum))
	if err != nil {
		return e, false
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Format != cacheFormat || e.HostMinor != sdk.ProtocolMinor || e.SHA256 != hex.EncodeToString(sum) ||
		(e.Error == "" && len(e.Models) == 0) {
		r.Logger.Debug("ignoring a bad describe cache entry", "file", r.cachePath(sum))
		return cacheEntry{}, false
	}
	return e, true
}

// writeCache stores an answer; a cache that cannot be written only costs
// the next command a plugin start.
func (r *Registry) writeCache(sum []byte, e cacheEntry) {
	e.Format, e.HostMinor, e.SHA256 = cacheFormat, sdk.ProtocolMinor, hex.EncodeToString(sum)
	b, err := json.Marshal(e)
	if err == nil {
		err = fsx.WriteBytes(r.cachePath(sum), fsx.Options{MkdirAll: true}, b)
	}
	if err != nil {
		r.Logger.Debug("cannot write the describe cache", "error", err)
	}
}
