package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
)

// videoTree builds root/<class>/<file> from the shared videos, as symlinks:
// files maps "class/name" to a shared video's file name.
func videoTree(t *testing.T, files map[string]string) string {
	t.Helper()
	videos := filepath.Join(shareddata.Dir(t), "videos")
	root := filepath.Join(t.TempDir(), "videos")
	for dst, src := range files {
		p := filepath.Join(root, filepath.FromSlash(dst))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(videos, src), p); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

var kineticsTree = map[string]string{
	"archery/archery_000001_000011.avi":  "archery.avi",
	"archery/clip2.avi":                  "test.avi",
	"arm_wrestling/aw_000003_000013.mp4": "arm_wrestling.mp4",
	"arm_wrestling/aw2.mp4":              "test.mp4",
	"arm_wrestling/sub/part_0.mp4":       "part_0.mp4",
	"arm_wrestling/notes.txt":            "README.md",
}

// TestDataList: a tree becomes a sorted list with paths relative to the
// list, a label file, the same bytes on a second run, and a stratified
// split that depends on the seed alone.
func TestDataList(t *testing.T) {
	root := videoTree(t, kineticsTree)
	out := filepath.Join(t.TempDir(), "lists")
	os.MkdirAll(out, 0o755)
	list := filepath.Join(out, "all.list")
	r := zoo(t, nil, "data", "list", root, "--out", list)
	if r.code != 0 {
		t.Fatalf("data list: %d\n%s", r.code, r.stderr)
	}
	want := `../videos/archery/archery_000001_000011.avi 0
../videos/archery/clip2.avi 0
../videos/arm_wrestling/aw2.mp4 1
../videos/arm_wrestling/aw_000003_000013.mp4 1
../videos/arm_wrestling/sub/part_0.mp4 1
`
	// The tree is in a sibling temp dir, so compare from "videos/" on.
	got := readFile(t, list)
	norm := func(s string) string {
		var out []string
		for _, l := range lines(s) {
			out = append(out, "../videos/"+l[strings.Index(l, "videos/")+len("videos/"):])
		}
		return strings.Join(out, "\n") + "\n"
	}
	if norm(got) != want || strings.Contains(got, root) {
		t.Errorf("list:\n%s\nwant (relative):\n%s", got, want)
	}
	// The list's paths resolve against its own directory.
	for _, l := range lines(got) {
		p := filepath.Join(out, strings.Fields(l)[0])
		if _, err := os.Stat(p); err != nil {
			t.Errorf("list path %s does not resolve from the list: %v", l, err)
		}
	}
	if lb := readFile(t, filepath.Join(out, "labels.txt")); lb != "archery\narm_wrestling\n" {
		t.Errorf("labels.txt = %q", lb)
	}
	if !strings.Contains(r.stderr, "1 files under") {
		t.Errorf("no note of the skipped notes.txt:\n%s", r.stderr)
	}
	r = zoo(t, nil, "data", "list", root, "--out", list)
	if r.code != 0 || readFile(t, list) != got {
		t.Errorf("a second run changed the list: %d\n%s", r.code, readFile(t, list))
	}

	// Stratified split: val takes 1 of each class at 0.3, seeds decide.
	split := func(seed string) (train, val []string) {
		r := zoo(t, nil, "data", "list", root, "--out", list, "--split", "val=0.3", "--seed", seed)
		if r.code != 0 {
			t.Fatalf("split: %d\n%s", r.code, r.stderr)
		}
		return lines(readFile(t, filepath.Join(out, "all_train.list"))), lines(readFile(t, filepath.Join(out, "all_val.list")))
	}
	tr1, va1 := split("3")
	tr2, va2 := split("3")
	if !slices.Equal(tr1, tr2) || !slices.Equal(va1, va2) {
		t.Errorf("one seed, two splits: %v %v / %v %v", tr1, va1, tr2, va2)
	}
	if len(va1) != 2 || len(tr1) != 3 || !strings.HasSuffix(va1[0], " 0") || !strings.HasSuffix(va1[1], " 1") {
		t.Errorf("split not stratified: train %v val %v", tr1, va1)
	}
	all := append(slices.Clone(tr1), va1...)
	slices.Sort(all)
	if want := lines(got); !slices.Equal(all, sorted(want)) {
		t.Errorf("train+val %v != list %v", all, want)
	}
	differs := false
	for _, seed := range []string{"1", "2", "4", "5", "6"} {
		if _, va := split(seed); !slices.Equal(va, va1) {
			differs = true
		}
	}
	if !differs {
		t.Errorf("the seed never changes the split")
	}

	// --labels: Kinetics' 400 names (spaces) against folders (underscores).
	k400 := filepath.Join(shareddata.Dir(t), "labels", "kinetics400.txt")
	r = zoo(t, nil, "data", "list", root, "--out", list, "--labels", k400)
	if r.code != 0 {
		t.Fatalf("--labels: %d\n%s", r.code, r.stderr)
	}
	l := lines(readFile(t, list))
	if !strings.HasSuffix(l[0], " 5") || !strings.HasSuffix(l[4], " 6") {
		t.Errorf("--labels kinetics400.txt: want archery 5, arm wrestling 6:\n%v", l)
	}
	if lb := lines(readFile(t, filepath.Join(out, "labels.txt"))); len(lb) != 400 || lb[6] != "arm wrestling" {
		t.Errorf("labels.txt with --labels: %d lines, [6] %q", len(lb), lb[6])
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestDataListBadInput: every bad tree is a one-line error naming the file.
func TestDataListBadInput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.list")
	k400 := filepath.Join(shareddata.Dir(t), "labels", "kinetics400.txt")
	missing := filepath.Join(t.TempDir(), "nope")
	r := zoo(t, nil, "data", "list", missing, "--out", out)
	oneLineError(t, r, 1, missing+": no such directory")

	empty := t.TempDir()
	os.MkdirAll(filepath.Join(empty, "archery"), 0o755)
	os.WriteFile(filepath.Join(empty, "archery", "a.txt"), []byte("x"), 0o644)
	r = zoo(t, nil, "data", "list", empty, "--out", out)
	oneLineError(t, r, 1, empty+": no videos")

	dup := videoTree(t, map[string]string{"archery/x.mp4": "test.mp4", "bowling/x.mp4": "part_0.mp4"})
	r = zoo(t, nil, "data", "list", dup, "--out", out)
	oneLineError(t, r, 1, "the same file name in two places")
	if !strings.Contains(r.stderr, filepath.Join(dup, "archery", "x.mp4")) || !strings.Contains(r.stderr, filepath.Join(dup, "bowling", "x.mp4")) {
		t.Errorf("duplicate error names neither file:\n%s", r.stderr)
	}

	typo := videoTree(t, map[string]string{"archerry/a.mp4": "test.mp4"})
	r = zoo(t, nil, "data", "list", typo, "--out", out, "--labels", k400)
	oneLineError(t, r, 1, `folder "archerry" matches no class in `+k400+`; did you mean "archery" (class 5)?`)

	r = zoo(t, nil, "data", "list", typo, "--out", out, "--split", "val=1.5")
	oneLineError(t, r, 2, `--split "val=1.5"`)
	r = zoo(t, nil, "data", "list", typo)
	oneLineError(t, r, 2, "--out LIST is required")
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed run wrote %s", out)
	}
}

// TestDataKinetics: a Kinetics CSV against a folder named as the
// downloaders name clips; labels mapped by TSM's list (Paddle's underscored
// names against the CSV's spaces); a row without a file is reported.
func TestDataKinetics(t *testing.T) {
	root := videoTree(t, map[string]string{
		"train/arm_wrestling/abcDEF-_123_000010_000020.mp4": "arm_wrestling.mp4",
		"train/archery/xyz_id.avi":                          "archery.avi",
	})
	dir := t.TempDir()
	csv := filepath.Join(dir, "train.csv")
	os.WriteFile(csv, []byte("label,youtube_id,time_start,time_end,split\n"+
		"arm wrestling,abcDEF-_123,10,20,train\n"+
		"archery,xyz_id,0,10,train\n"+
		"\"playing guitar\",gone123,5,15,train\n"), 0o644)
	list := filepath.Join(dir, "train.list")
	r := zoo(t, nil, "data", "kinetics", csv, "--videos", root, "--out", list)
	if r.code != 0 {
		t.Fatalf("data kinetics: %d\n%s", r.code, r.stderr)
	}
	l := lines(readFile(t, list))
	if len(l) != 2 || !strings.HasSuffix(l[0], "archery/xyz_id.avi 5") || !strings.HasSuffix(l[1], "abcDEF-_123_000010_000020.mp4 6") || filepath.IsAbs(l[0]) {
		t.Errorf("list:\n%s", strings.Join(l, "\n"))
	}
	if !strings.Contains(r.stderr, "1 of 3 rows of "+csv+" have no video") {
		t.Errorf("missing row not counted:\n%s", r.stderr)
	}
	var rep struct {
		Rows, Found int
		Missing     []struct {
			Line      int
			YoutubeID string `json:"youtube_id"`
			Want      string
		}
	}
	readJSON(t, filepath.Join(dir, "train_report.json"), &rep)
	if rep.Rows != 3 || rep.Found != 2 || len(rep.Missing) != 1 || rep.Missing[0].Line != 4 || rep.Missing[0].Want != "gone123_000005_000015.mp4" {
		t.Errorf("report: %+v", rep)
	}
	if lb := lines(readFile(t, filepath.Join(dir, "labels.txt"))); len(lb) != 400 || lb[5] != "archery" {
		t.Errorf("labels.txt: %d lines", len(lb))
	}

	// A test CSV without labels (Kinetics-600/700) lists paths alone.
	test := filepath.Join(dir, "test.csv")
	os.WriteFile(test, []byte("youtube_id,time_start,time_end,split\nxyz_id,0,10,test\n"), 0o644)
	tl := filepath.Join(dir, "test.list")
	if r := zoo(t, nil, "data", "kinetics", test, "--videos", root, "--out", tl); r.code != 0 {
		t.Fatalf("unlabelled CSV: %d\n%s", r.code, r.stderr)
	}
	if l := lines(readFile(t, tl)); len(l) != 1 || !strings.HasSuffix(l[0], "archery/xyz_id.avi") {
		t.Errorf("unlabelled list: %q", l)
	}

	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("youtube_id,label,start,end\nx,archery,0,10\n"), 0o644)
	r = zoo(t, nil, "data", "kinetics", bad, "--videos", root, "--out", list)
	oneLineError(t, r, 1, bad+`:1: header "youtube_id,label,start,end" lacks column "time_start"`)

	typo := filepath.Join(dir, "typo.csv")
	os.WriteFile(typo, []byte("label,youtube_id,time_start,time_end,split\narchery,xyz_id,0,10,train\narm wrestlin,q,1,2,train\n"), 0o644)
	r = zoo(t, nil, "data", "kinetics", typo, "--videos", root, "--out", list)
	oneLineError(t, r, 1, typo+`:3: label "arm wrestlin" is not a class of model TSM's label list (zoo info TSM); did you mean "arm_wrestling" (class 6)?`)

	r = zoo(t, nil, "data", "kinetics", csv, "--videos", filepath.Join(dir, "nope"), "--out", list)
	oneLineError(t, r, 1, "--videos "+filepath.Join(dir, "nope")+": no such directory")
}

// TestDataCheck: every video of a list decoded; broken ones reported with
// the reason, a JSON report, exit 1, and --write-clean keeps the good.
func TestDataCheck(t *testing.T) {
	root := videoTree(t, kineticsTree)
	videos := filepath.Join(shareddata.Dir(t), "videos")
	bad := filepath.Join(root, "broken")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "empty.mp4"), nil, 0o644)
	os.WriteFile(filepath.Join(bad, "page.mp4"), []byte("<html>404 Not Found</html>\n"), 0o644)
	whole, err := os.ReadFile(filepath.Join(videos, "arm_wrestling.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bad, "cut.mp4"), whole[:len(whole)/2], 0o644)
	avi, _ := os.ReadFile(filepath.Join(videos, "test.avi"))
	os.WriteFile(filepath.Join(bad, "cut.avi"), avi[:len(avi)/3], 0o644)
	dir := t.TempDir()
	list := filepath.Join(dir, "all.list")
	if r := zoo(t, nil, "data", "list", root, "--out", list); r.code != 0 {
		t.Fatalf("data list: %s", r.stderr)
	}
	r := zoo(t, nil, "data", "check", list, "--json", "--seg_num", "40", "--workers", "2")
	if r.code != 1 {
		t.Fatalf("check exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Videos, Failed int
		Files          []struct {
			Path          string
			OK            bool
			Frames, Width int
			Codec, Reason string
			Size          int64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, f := range rep.Files {
		s := f.Reason
		if f.OK {
			s = "ok " + f.Codec
		}
		got[filepath.Base(f.Path)] = s
		if filepath.Base(f.Path) == "aw_000003_000013.mp4" && (f.Frames != 280 || f.Width != 340 || f.Size != int64(len(whole))) {
			t.Errorf("arm_wrestling.mp4: %+v, want 280 frames 340 wide %d bytes", f, len(whole))
		}
	}
	want := map[string]string{
		"archery_000001_000011.avi": "ok mpeg4", "clip2.avi": "ok mpeg4", "aw_000003_000013.mp4": "ok h264", "aw2.mp4": "ok h264",
		"part_0.mp4": "too few frames", "empty.mp4": "zero bytes", "page.mp4": "not a video", "cut.mp4": "truncated", "cut.avi": "truncated",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if rep.Videos != 9 || rep.Failed != 5 {
		t.Errorf("videos %d failed %d, want 9 and 5", rep.Videos, rep.Failed)
	}

	clean := filepath.Join(dir, "clean.list")
	r = zoo(t, nil, "data", "check", list, "--write-clean", clean)
	oneLineError(t, r, 1, list+": 4 of 9 videos failed the check")
	if !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "zero bytes") || !strings.Contains(r.stdout, "280 frames") {
		t.Errorf("table:\n%s", r.stdout)
	}
	if l := lines(readFile(t, clean)); len(l) != 5 || !strings.HasPrefix(l[0], "../") {
		t.Errorf("clean list:\n%s", readFile(t, clean))
	}
	r = zoo(t, nil, "data", "check", clean)
	if r.code != 0 || !strings.Contains(r.stderr, "all 5 videos decode") {
		t.Errorf("check of the clean list: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDataListTrains: `zoo run TSM train` reads the lists `zoo data list`
// wrote (train and val from --split), from fresh weights with --pretrain
// none; without it the published ResNet50_pretrained, which does not fit
// the configured network, is refused before any download.
func TestDataListTrains(t *testing.T) {
	root := videoTree(t, map[string]string{
		"archery/a1.avi": "archery.avi", "archery/a2.avi": "test.avi",
		"arm_wrestling/w1.mp4": "arm_wrestling.mp4", "arm_wrestling/w2.mp4": "test.mp4",
	})
	dir := t.TempDir()
	list := filepath.Join(dir, "k.list")
	if r := zoo(t, nil, "data", "list", root, "--out", list, "--split", "val=0.5"); r.code != 0 {
		t.Fatalf("data list: %s", r.stderr)
	}
	cfg := filepath.Join(dir, "small.txt")
	os.WriteFile(cfg, []byte(`[MODEL]
name = "TSM"
num_classes = 2
num_layers = 18
base_width = 4
seg_num = 8

[TRAIN]
epoch = 1
short_size = 40
target_size = 32
batch_size = 2
num_reader_threads = 2
filelist = "`+filepath.Join(dir, "k_train.list")+`"

[VALID]
short_size = 40
target_size = 32
batch_size = 2
filelist = "`+filepath.Join(dir, "k_val.list")+`"
`), 0o644)
	save := t.TempDir()
	r := zoo(t, nil, "run", "TSM", "train", "--config", cfg, "--pretrain", "none", "--save_dir", save, "--log_interval", "1")
	if r.code != 0 {
		t.Fatalf("train on the lists: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"[TRAIN] Epoch 0, iter 0", "[VALID] Epoch 0", "saved checkpoint"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "pretrain: none") || strings.Contains(r.stderr, "pretrained:") {
		t.Errorf("--pretrain none loaded weights:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(save, "TSM_epoch0", "fc_0.w_0")); err != nil {
		t.Errorf("no checkpoint: %v", err)
	}
	// --filelist takes the same list in place of the config's key.
	r = zoo(t, nil, "run", "TSM", "train", "--config", cfg, "--pretrain", "none", "--filelist", list, "--save_dir", t.TempDir())
	if r.code != 0 || !strings.Contains(r.stdout, "[TRAIN] Epoch 0") {
		t.Fatalf("train --filelist: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Without --pretrain the published ResNet50_pretrained would be
	// fetched: it cannot fit this ResNet-18 of width 4, which is said
	// before any download (the store is offline here, so a fetch would
	// fail with the store's error instead).
	r = zoo(t, nil, "run", "TSM", "train", "--config", cfg, "--save_dir", t.TempDir())
	oneLineError(t, r, 1, "weight set ResNet50_pretrained does not fit the network "+cfg+" configures: bn2a_branch1_mean: the network's shape [4], the set's [256] (and 104 more); 160 of its 265 variables are not in the network")
	if !strings.Contains(r.stderr, "not downloaded: pass --pretrain none") || strings.Contains(r.stderr, "zoo weights import") {
		t.Errorf("misfit error:\n%s", r.stderr)
	}
	// The same for test's published tsm_kinetics against 2 classes.
	r = zoo(t, nil, "run", "TSM", "test", "--config", cfg, "--filelist", filepath.Join(dir, "k_val.list"), "--save_dir", t.TempDir())
	oneLineError(t, r, 1, "weight set tsm_kinetics does not fit the network "+cfg+" configures")
	if !strings.Contains(r.stderr, "not downloaded: pass --weights DIR") {
		t.Errorf("misfit error:\n%s", r.stderr)
	}
	r = zoo(t, nil, "run", "TSM", "train", "--config", cfg, "--pretrain", "none", "--resume", save)
	oneLineError(t, r, 2, "--pretrain none and --resume")
}

// TestFirstRealVideo: with no --config, a real video is the published
// job's (Paddle's tsm.txt, tsm_kinetics), never the built-in job's
// checkpoint; offline, the fetch's one-line error says how to import the
// set. The built-in job's infer prints each class name and index.
func TestFirstRealVideo(t *testing.T) {
	archery := filepath.Join(shareddata.Dir(t), "videos", "archery.avi")
	save := t.TempDir()
	r := zoo(t, nil, "run", "TSM", "infer", "--video_path", archery, "--save_dir", save)
	oneLineError(t, r, 1, "zoo weights import")
	if !strings.Contains(r.stderr, "tsm_kinetics") || !strings.Contains(r.stderr, "published configuration") {
		t.Errorf("a fresh dir: not the published job:\n%s", r.stderr)
	}

	small := []string{"--save_dir", save, "--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_videos=16",
		"--set", "SYNTHETIC.valid_videos=4", "--set", "SYNTHETIC.infer_videos=2"}
	r = zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--valid_interval", "0"}, small...)...)
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	r = zoo(t, nil, append([]string{"run", "TSM", "infer"}, small...)...)
	if r.code != 0 || !strings.Contains(r.stdout, ") class ") {
		t.Errorf("built-in infer: %d, no class index beside the name:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The built-in job's 4-class checkpoint is there; a real video still
	// takes the published job.
	for _, args := range [][]string{
		{"run", "TSM", "infer", "--video_path", archery, "--save_dir", save},
		{"run", "TSM", "test", "--filelist", filepath.Join(shareddata.Dir(t), "labels", "val_small_videos.list"), "--save_dir", save},
	} {
		r = zoo(t, nil, args...)
		oneLineError(t, r, 1, "zoo weights import")
		if !strings.Contains(r.stderr, "tsm_kinetics") || strings.Contains(r.stdout, "archery.avi:") || strings.Contains(r.stderr, "using checkpoint") {
			t.Errorf("%v: the built-in checkpoint was applied to real data:\n%s\n%s", args, r.stdout, r.stderr)
		}
	}
}
