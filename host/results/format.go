package results

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// FormatLine formats an event as Paddle's train and test scripts log it,
// "[TRAIN] Epoch 3, iter 20  Loss: 1.234567, top1_acc: 45.00, top5_acc: 90.00",
// with the phase upper-cased ([TRAIN], [VALID], [TEST]). Accuracies are
// printed as percentages; Events and every file hold fractions. An event
// without an epoch (Epoch < 0, as test and infer have) omits "Epoch N, ".
// Extra metrics follow in name order, ", allreduce_s: 0.012345".
func FormatLine(e Event) string {
	phase := strings.ToUpper(e.Phase)
	if phase == "" {
		phase = "TRAIN"
	}
	where := fmt.Sprintf("Epoch %d, iter %d", e.Epoch, e.Iter)
	if e.Epoch < 0 {
		where = fmt.Sprintf("iter %d", e.Iter)
	}
	line := fmt.Sprintf("[%s] %s  Loss: %.6f, top1_acc: %.2f, top5_acc: %.2f",
		phase, where, e.Loss, 100*e.Top1, 100*e.Top5)
	for _, k := range slices.Sorted(maps.Keys(e.Extra)) {
		line += fmt.Sprintf(", %s: %.6f", k, e.Extra[k])
	}
	return line
}

// FormatTrainLine is FormatLine for a training event; it exists so the
// driver reads as the issue describes it. The phase comes from e.
func FormatTrainLine(e Event) string { return FormatLine(e) }
