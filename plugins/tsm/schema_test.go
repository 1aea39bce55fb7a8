package tsm

import (
	"encoding/json"
	"testing"

	"github.com/zoo-ml/zoo/internal/golden"
	"github.com/zoo-ml/zoo/sdk"
)

// TestSchema: the keys derived from Config (what `zoo info` shows and the
// host validates against) are testdata/schema.json, which the hand-written
// key list of zoo 0.1 produced; -update rewrites it after a deliberate
// change.
func TestSchema(t *testing.T) {
	got, err := json.MarshalIndent(mustSchema(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/schema.json", append(got, '\n'))
}

// mustSchema is Schema() for tests, which build configs from its defaults.
func mustSchema() []sdk.ConfigKey {
	ks, err := Schema()
	if err != nil {
		panic(err)
	}
	return ks
}
