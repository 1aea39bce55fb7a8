package classifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/sdk"
)

// Fact is one thing every rank of a job must have alike, as bytes.
type Fact struct {
	Name  string
	Value []byte
}

// OpenFacts are the facts of an Open every rank must share: the zoo and
// plugin builds, the mode, the config, the weights, the seed and the
// device; a plugin appends its lists' contents (FileFact).
func OpenFacts(req sdk.OpenRequest) []Fact {
	cj, _ := json.Marshal(req.Config) // maps marshal with sorted keys
	wj, _ := json.Marshal(req.Weights)
	return []Fact{
		{Name: "zoo version", Value: []byte(req.HostVersion)},
		ExecutableFact(),
		{Name: "mode", Value: []byte(req.Mode)},
		{Name: "config", Value: cj},
		{Name: "weights", Value: wj},
		{Name: "seed", Value: fmt.Append(nil, req.Seed)},
		{Name: "device", Value: []byte(req.Device)},
	}
}

// FileFact is a fact about a file's contents (empty path: no file).
func FileFact(name, path string) Fact {
	if path == "" {
		return Fact{name, nil}
	}
	f, err := os.Open(path)
	if err != nil {
		return Fact{name, []byte("unreadable: " + err.Error())}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Fact{name, []byte("unreadable: " + err.Error())}
	}
	return Fact{name, h.Sum(nil)}
}

// ExecutableFact is the running executable's sha256: ranks must run one
// build of the plugin.
func ExecutableFact() Fact {
	exe, err := os.Executable()
	if err != nil {
		return Fact{"plugin build", []byte(err.Error())}
	}
	return FileFact("plugin build", exe)
}

// CheckRanksAgree gathers every rank's facts (as hashes) at rank 0, which
// compares them with its own and tells every rank the first that differs:
// every rank returns the same error, one line naming the fact and the rank.
func CheckRanksAgree(comm dist.Communicator, facts []Fact) error {
	if comm == nil || comm.Size() == 1 {
		return nil
	}
	var mine []byte
	for _, f := range facts {
		h := sha256.Sum256(f.Value)
		mine = append(mine, h[:]...)
	}
	all, err := comm.Gather(mine, 0)
	if err != nil {
		return fmt.Errorf("comparing ranks: %w", err)
	}
	var msg []byte
	if comm.Rank() == 0 {
	ranks:
		for r := 1; r < len(all); r++ {
			if len(all[r]) != len(mine) {
				msg = fmt.Appendf(nil, "rank %d checks %d facts, rank 0 %d: run every rank with one build of zoo and its plugins", r, len(all[r])/sha256.Size, len(facts))
				break
			}
			for i, f := range facts {
				a, b := all[0][i*sha256.Size:][:sha256.Size], all[r][i*sha256.Size:][:sha256.Size]
				if !bytes.Equal(a, b) {
					msg = fmt.Appendf(nil, "ranks disagree: rank %d's %s differs from rank 0's: run every rank with the same zoo, plugins, config, flags and lists", r, f.Name)
					break ranks
				}
			}
		}
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(msg)))
	if err := comm.Broadcast(n[:], 0); err != nil {
		return fmt.Errorf("comparing ranks: %w", err)
	}
	if comm.Rank() != 0 {
		msg = make([]byte, binary.LittleEndian.Uint64(n[:]))
	}
	if err := comm.Broadcast(msg, 0); err != nil {
		return fmt.Errorf("comparing ranks: %w", err)
	}
	if len(msg) > 0 {
		return fmt.Errorf("%s", msg)
	}
	return nil
}
