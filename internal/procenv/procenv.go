// Package procenv holds what zoo adds to the environment of the
// processes it starts to run models: plugins (registry) and zoo-bench's
// measured cases, so that both run the way a plugin runs under zoo.
package procenv

import "strings"

// Plugin is what zoo adds to a plugin's environment: OMP_WAIT_POLICY
// passive unless environ sets it. OpenMP runtimes (libgomp under oneDNN
// and PyTorch) by default let their idle threads spin after each parallel
// region; in a plugin they spin on cores the plugin's own Go kernels and
// decoders need next: passive made TSM-R50's training step 13% faster
// here and its forward pass 7% slower
// (docs/performance.md). The runtime reads the variable once, when the
// library loads, so the plugin cannot set it for itself: the host does.
func Plugin(environ []string) []string {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "OMP_WAIT_POLICY=") {
			return nil
		}
	}
	return []string{"OMP_WAIT_POLICY=passive"}
}
