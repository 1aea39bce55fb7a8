package textdist

import "testing"

func TestEdit(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"learning_rat", "learning_rate", 1},
		{"kitten", "sitting", 3},
		{"flaw", "lawn", 2},
		{"arm_wrestling", "arm wrestling", 1},
	} {
		if got := Edit(tc.a, tc.b); got != tc.want {
			t.Errorf("Edit(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Edit(tc.b, tc.a); got != tc.want {
			t.Errorf("Edit(%q, %q) = %d, want %d (symmetric)", tc.b, tc.a, got, tc.want)
		}
	}
}
