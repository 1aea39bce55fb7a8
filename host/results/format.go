package results

import (
	"fmt"
	"strings"
)

// FormatLine formats an event as Paddle's train and test scripts log it,
// "[TRAIN] Epoch 3, iter 20  Loss: 1.234567, top1_acc: 45.00, top5_acc: 90.00",
// with the phase upper-cased ([TRAIN], [VALID], [TEST]). Accuracies are
// printed as percentages; Events and every file hold fractions. An event
// without an epoch (Epoch < 0, as test and infer have) omits "Epoch N, ".
func FormatLine(e Event) string {
	phase := strings.ToUpper(e.Phase)
	if phase == "" {
		phase = "TRAIN"
	}
	where := fmt.Sprintf("Epoch %d, iter %d", e.Epoch, e.Iter)
	if e.Epoch < 0 {
		where = fmt.Sprintf("iter %d", e.Iter)
	}
	return fmt.Sprintf("[%s] %s  Loss: %.6f, top1_acc: %.2f, top5_acc: %.2f",
		phase, where, e.Loss, 100*e.Top1, 100*e.Top5)
}

// FormatTrainLine is FormatLine for a training event; it exists so the
// driver reads as the issue describes it. The phase comes from e.
func FormatTrainLine(e Event) string { return FormatLine(e) }
