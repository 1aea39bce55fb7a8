package tsm

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/zoo-ml/zoo/sdk"
)

var update = flag.Bool("update", false, "rewrite testdata/schema.json from Schema()")

// TestSchema: the keys derived from Config (what `zoo info` shows and the
// host validates against) are testdata/schema.json, which the hand-written
// key list of zoo 0.1 produced; -update rewrites it after a deliberate
// change.
func TestSchema(t *testing.T) {
	got, err := json.MarshalIndent(mustSchema(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/schema.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Schema() differs from %s (go test -run TestSchema -update rewrites it):\n%s", golden, got)
	}
}

// mustSchema is Schema() for tests, which build configs from its defaults.
func mustSchema() []sdk.ConfigKey {
	ks, err := Schema()
	if err != nil {
		panic(err)
	}
	return ks
}
