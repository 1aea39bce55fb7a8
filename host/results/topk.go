package results

import (
	"cmp"
	"math"
	"slices"
)

// TopK returns the indices and values of the k largest scores, largest
// first. Ties keep the lower index first (Paddle's argsort()[-k:][::-1]
// does not promise an order for ties; zoo does, so results are
// reproducible). NaN ranks below every number. k is clamped to [0,
// len(scores)].
func TopK(scores []float32, k int) (idx []int, vals []float32) {
	k = max(0, min(k, len(scores)))
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		sa, sb := scores[a], scores[b]
		na, nb := math.IsNaN(float64(sa)), math.IsNaN(float64(sb))
		switch {
		case na || nb:
			return cmp.Compare(b2i(na), b2i(nb))
		default:
			return cmp.Compare(sb, sa)
		}
	})
	idx = order[:k:k]
	vals = make([]float32, k)
	for i, j := range idx {
		vals[i] = scores[j]
	}
	return idx, vals
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
