package classifier

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/sdk"
)

// backboneParams are the parameters of each depth's ResNet without its
// classifier, at base width 64 (batch-norm statistics included); they
// grow with the square of the base width.
var backboneParams = map[int]float64{18: 11.18e6, 34: 21.29e6, 50: 23.51e6, 101: 42.50e6, 152: 58.14e6}

// Footprint is a lower bound of the memory, in bytes, that a model of
// cfg needs to run one batch, split by what the config's keys size. Each
// term counts only buffers the graph cannot do without: parameters (three
// times when training: value, gradient, Momentum velocity), one input
// batch and the stem's output (twice when training: its gradient). The
// sums are in float64 so that absurd values cannot overflow.
type Footprint struct {
	Classifier, Backbone, Input, Stem float64
}

// Total is the sum of the terms.
func (f Footprint) Total() float64 { return f.Classifier + f.Backbone + f.Input + f.Stem }

// EstimateFootprint returns cfg's lower bound; cfg.Depth must be valid
// (CheckDepth).
func EstimateFootprint(cfg resnet.Config, train bool) Footprint {
	copies := 1.0
	if train {
		copies = 3
	}
	bw := float64(cfg.BaseWidth)
	features := bw * 8 // the basic block's last stage
	if cfg.Depth >= 50 {
		features = bw * 32 // the bottleneck's 4x expansion
	}
	const f32 = 4
	frames := float64(cfg.BatchSize) * float64(cfg.SegNum)
	stemCopies := 1.0
	if train {
		stemCopies = 2
	}
	return Footprint{
		Classifier: f32 * copies * (features + 1) * float64(cfg.NumClasses),
		Backbone:   f32 * copies * backboneParams[cfg.Depth] * (bw / 64) * (bw / 64),
		Input:      f32 * frames * 3 * float64(cfg.Height) * float64(cfg.Width),
		Stem:       f32 * stemCopies * frames * bw * float64((cfg.Height+1)/2) * float64((cfg.Width+1)/2),
	}
}

// CheckMemory refuses, before anything is allocated, a model that cannot
// fit in this machine's memory even by EstimateFootprint's lower bound, so
// that an absurd MODEL.num_classes is a message and not the Go runtime's
// out-of-memory crash. section names the reader section whose batch_size
// and target_size sized the input. A config under the bound may still not
// fit: activations are counted only at the stem.
func CheckMemory(cfg resnet.Config, train bool, section string) error {
	fp := EstimateFootprint(cfg, train)
	limit, where := MemoryLimit()
	if fp.Total() <= limit {
		return nil
	}
	culprit := fmt.Sprintf("MODEL.num_classes %d", cfg.NumClasses)
	biggest := fp.Classifier
	if fp.Backbone > biggest {
		culprit, biggest = fmt.Sprintf("MODEL.base_width %d", cfg.BaseWidth), fp.Backbone
	}
	if fp.Input+fp.Stem > biggest {
		culprit = fmt.Sprintf("[%s] batch_size %d with target_size %d and %d frames per clip", section, cfg.BatchSize, cfg.Height, cfg.SegNum)
	}
	return sdk.Errorf(sdk.CodeInvalidArgument, "%s: the model needs at least %s of memory, more than %s (%s); make it smaller",
		culprit, Bytes(fp.Total()), Bytes(limit), where)
}

// MemoryLimit returns the memory this process may use, the smaller of the
// machine's (MemTotal) and its cgroup's limit, and what it is; 1 PiB when
// neither can be read.
func MemoryLimit() (float64, string) {
	limit, where := float64(1<<50), "the assumed maximum"
	if kb := meminfoKB("/proc/meminfo", "MemTotal:"); kb > 0 {
		limit, where = kb*1024, "this machine's memory"
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && v > 0 && v < limit {
			limit, where = v, "this cgroup's memory.max"
		}
	}
	return limit, where
}

func meminfoKB(path, key string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				v, _ := strconv.ParseFloat(fields[0], 64)
				return v
			}
		}
	}
	return 0
}

// Bytes writes n bytes in binary units (512 B, 1.5 GiB, 2.0 PiB, and
// beyond in EiB).
func Bytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
