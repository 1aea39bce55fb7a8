package dataset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/zoo-ml/zoo/internal/textdist"
	"os"
	"strings"
)

// ReadLabels reads a label file: one class name per line (index = line,
// blank lines and a trailing newline aside), or a JSON list of names as
// Paddle ships kinetics_labels.json.
func ReadLabels(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "[") {
		var names []string
		if err := json.Unmarshal([]byte(t), &names); err != nil {
			return nil, fmt.Errorf("%s: not a JSON list of class names: %v", path, err)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no class names", path)
		}
		return names, nil
	}
	var names []string
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for line := 1; sc.Scan(); line++ {
		n := strings.TrimSpace(sc.Text())
		if n == "" {
			continue
		}
		if prev, ok := seen[n]; ok {
			return nil, fmt.Errorf("%s:%d: class %q already on line %d", path, line, n, prev)
		}
		seen[n] = line
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no class names", path)
	}
	return names, nil
}

// nameReplacer is built once: normName runs for every row of a CSV.
var nameReplacer = strings.NewReplacer("_", " ", "-", " ", "(", "", ")", "", "'", "", "\"", "")

// normName is the form in which class names compare: Kinetics' CSVs and
// label files say "air drumming", folders and Paddle's JSON "air_drumming".
func normName(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = nameReplacer.Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// labelIndex maps class names to indices, by exact and by normalised name.
type labelIndex struct {
	names []string
	norm  map[string]int
}

func newLabelIndex(names []string) labelIndex {
	li := labelIndex{names: names, norm: make(map[string]int, len(names))}
	for i, n := range names {
		k := normName(n)
		if _, dup := li.norm[k]; !dup {
			li.norm[k] = i
		}
	}
	return li
}

// find returns the index of name, or -1 and a did-you-mean suffix.
func (li labelIndex) find(name string) (int, string) {
	q := normName(name)
	if i, ok := li.norm[q]; ok {
		return i, ""
	}
	best, bestD := -1, 1<<30
	for i, n := range li.names {
		if d := textdist.Edit(q, normName(n)); d < bestD {
			best, bestD = i, d
		}
	}
	if best >= 0 && bestD <= max(2, len(name)/3) {
		return -1, fmt.Sprintf("; did you mean %q (class %d)?", li.names[best], best)
	}
	return -1, ""
}
