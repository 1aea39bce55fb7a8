package procenv

import (
	"slices"
	"testing"
)

func TestPlugin(t *testing.T) {
	if got := Plugin([]string{"PATH=/bin"}); !slices.Equal(got, []string{"OMP_WAIT_POLICY=passive"}) {
		t.Errorf("without OMP_WAIT_POLICY: %q, want passive added", got)
	}
	if got := Plugin([]string{"OMP_WAIT_POLICY=active", "PATH=/bin"}); got != nil {
		t.Errorf("with the user's OMP_WAIT_POLICY: %q, want nothing added", got)
	}
}
