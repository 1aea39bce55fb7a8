//go:build zoocuda

package cuda

import (
	"strings"
	"testing"
)

// TestKernelsCompile compiles every kernel with NVRTC, which needs
// libnvrtc but no GPU: `make cuda-check` runs it on machines without one.
func TestKernelsCompile(t *testing.T) {
	t.Parallel()
	for _, arch := range []string{"compute_70", "sm_80", "sm_90"} {
		t.Run(arch, func(t *testing.T) {
			bin, err := Compile(kernelSource, arch)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(arch, "compute_") {
				return
			}
			for _, k := range kernelNames {
				if !strings.Contains(string(bin), ".entry "+k+"(") {
					t.Errorf("kernel %s missing from the PTX", k)
				}
			}
		})
	}
}
