package dataset

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// kineticsColumns are the columns of Kinetics-400/600/700's annotation
// CSVs that Kinetics reads; others (K700-2020's is_cc) are ignored, split
// is optional, and so is label (test CSVs): then the entries have NoLabel.
var kineticsColumns = []string{"label", "youtube_id", "time_start", "time_end", "split"}

// Missing is a CSV row whose video is not in the folder.
type Missing struct {
	Line      int    `json:"line"`
	YoutubeID string `json:"youtube_id"`
	Label     string `json:"label"`
	// Want is the file name the common downloaders give the clip.
	Want string `json:"want"`
}

// NoLabel is the Label of an entry whose CSV row has none.
const NoLabel = -1

// KineticsResult is what Kinetics found.
type KineticsResult struct {
	Entries []Entry
	// Rows counts the CSV's data rows; Missing lists those without a
	// video file, in CSV order.
	Rows    int
	Missing []Missing
}

// ClipName is the file name youtube-dl based Kinetics downloaders
// (ActivityNet's download.py, mmaction2's) give a clip.
func ClipName(id string, start, end int) string {
	return fmt.Sprintf("%s_%06d_%06d", id, start, end)
}

// Kinetics reads an annotation CSV and finds each row's clip under videos
// (searched recursively: downloaders file clips flat, by split or by
// class), named ClipName(...) or youtube_id, with any video extension. Each
// row's label is mapped to its index in labels (compared ignoring case,
// spaces against underscores); a label not there is an error naming the
// CSV's line.
func Kinetics(csvPath, videos string, labels []string, labelsFrom string) (*KineticsResult, error) {
	st, err := os.Stat(videos)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--videos %s: no such directory", videos)
	}
	files := map[string]string{} // file name without extension -> path
	err = filepath.WalkDir(videos, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isVideo(p) {
			stem := strings.TrimSuffix(d.Name(), filepath.Ext(d.Name()))
			if _, dup := files[stem]; !dup {
				files[stem] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", videos, err)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: no such file", csvPath)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: no header: want %s", csvPath, strings.Join(kineticsColumns, ","))
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	// Kinetics-600's and -700's test CSVs have no label column: their
	// clips make a list for infer, paths alone.
	_, labelled := col["label"]
	for _, c := range kineticsColumns[1:4] {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s:1: header %q lacks column %q: want Kinetics' %s", csvPath, strings.Join(head, ","), c, strings.Join(kineticsColumns, ","))
		}
	}
	li := newLabelIndex(labels)
	res := &KineticsResult{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", csvPath, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < len(head) {
			return nil, fmt.Errorf("%s:%d: %d fields, the header has %d", csvPath, line, len(rec), len(head))
		}
		res.Rows++
		label := ""
		if labelled {
			label = strings.TrimSpace(rec[col["label"]])
		}
		id := strings.TrimSpace(rec[col["youtube_id"]])
		start, err1 := strconv.Atoi(strings.TrimSpace(rec[col["time_start"]]))
		end, err2 := strconv.Atoi(strings.TrimSpace(rec[col["time_end"]]))
		if id == "" || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: want a youtube_id and whole-second time_start and time_end, got %q", csvPath, line, strings.Join(rec, ","))
		}
		idx := NoLabel
		if labelled {
			var hint string
			if idx, hint = li.find(label); idx < 0 {
				return nil, fmt.Errorf("%s:%d: label %q is not a class of %s%s", csvPath, line, label, labelsFrom, hint)
			}
		}
		name := ClipName(id, start, end)
		p, ok := files[name]
		if !ok {
			p, ok = files[id]
		}
		if !ok {
			res.Missing = append(res.Missing, Missing{Line: line, YoutubeID: id, Label: label, Want: name + ".mp4"})
			continue
		}
		res.Entries = append(res.Entries, Entry{Path: p, Label: idx})
	}
	if res.Rows == 0 {
		return nil, fmt.Errorf("%s: no rows after the header", csvPath)
	}
	sortEntries(res.Entries)
	return res, nil
}
