package dist

import "testing"

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{10, 2}, {11, 2}, {3, 4}, {128, 8}, {0, 3}} {
		next := 0
		for r := 0; r < tc.size; r++ {
			lo, hi := Split(tc.n, r, tc.size)
			if lo != next || hi < lo || hi-lo > tc.n/tc.size+1 {
				t.Fatalf("Split(%d, %d, %d) = [%d, %d), previous ended at %d", tc.n, r, tc.size, lo, hi, next)
			}
			next = hi
		}
		if next != tc.n {
			t.Errorf("Split(%d, ., %d) covers %d items", tc.n, tc.size, next)
		}
	}
}

func TestLocal(t *testing.T) {
	var c Communicator = Local{}
	buf := []float32{1, 2}
	if err := c.AllreduceSum(buf); err != nil || buf[0] != 1 || buf[1] != 2 || c.Rank() != 0 || c.Size() != 1 {
		t.Errorf("Local: %v %v rank %d size %d", buf, err, c.Rank(), c.Size())
	}
	g, err := c.Gather([]byte("x"), 0)
	if err != nil || len(g) != 1 || string(g[0]) != "x" {
		t.Errorf("Local.Gather = %q, %v", g, err)
	}
}
