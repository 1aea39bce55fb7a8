package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tsmSchema declares the keys of Paddle's configs/tsm.txt, plus the later
// INFER keys, the way the TSM plugin would.
var tsmSchema = func() Schema {
	s := Schema{
		{"MODEL", "name", TypeString, "TSM", "model name"},
		{"MODEL", "format", TypeString, "pkl", "input format"},
		{"MODEL", "num_classes", TypeInt, 400, "classes"},
		{"MODEL", "seg_num", TypeInt, 8, "segments"},
		{"MODEL", "seglen", TypeInt, 1, "frames per segment"},
		{"MODEL", "image_mean", TypeFloatList, []float64{0.485, 0.456, 0.406}, "mean"},
		{"MODEL", "image_std", TypeFloatList, []float64{0.229, 0.224, 0.225}, "std"},
		{"MODEL", "num_layers", TypeInt, 50, "depth"},
		{"MODEL", "topk", TypeInt, 5, "top-k metric"},
		{"TRAIN", "epoch", TypeInt, 65, ""},
		{"TRAIN", "use_gpu", TypeBool, true, ""},
		{"TRAIN", "num_gpus", TypeInt, 8, ""},
		{"TRAIN", "learning_rate", TypeFloat, 0.01, ""},
		{"TRAIN", "learning_rate_decay", TypeFloat, 0.1, ""},
		{"TRAIN", "decay_epochs", TypeIntList, []int{40, 60}, ""},
		{"TRAIN", "l2_weight_decay", TypeFloat, 1e-4, ""},
		{"TRAIN", "momentum", TypeFloat, 0.9, ""},
		{"TRAIN", "total_videos", TypeInt, 239781, ""},
		{"INFER", "video_path", TypeString, nil, "one video to infer"},
		{"INFER", "kinetics_labels", TypeString, "", "label names"},
	}
	for _, sec := range []string{"TRAIN", "VALID", "TEST", "INFER"} {
		s = append(s,
			Key{sec, "short_size", TypeInt, 256, ""},
			Key{sec, "target_size", TypeInt, 224, ""},
			Key{sec, "num_reader_threads", TypeInt, 12, ""},
			Key{sec, "buf_size", TypeInt, 1024, ""},
			Key{sec, "batch_size", TypeInt, 128, ""},
			Key{sec, "filelist", TypeString, "", ""},
		)
	}
	return s
}()

// wantTSM is configs/tsm.txt with the types Paddle's eval gives.
func wantTSM() Config {
	rd := func(batch int, list string) map[string]any {
		return map[string]any{"short_size": 256, "target_size": 224, "num_reader_threads": 12,
			"buf_size": 1024, "batch_size": batch, "filelist": "./dataset/kinetics/" + list}
	}
	train := rd(128, "train.list")
	for k, v := range map[string]any{"epoch": 65, "use_gpu": true, "num_gpus": 8, "learning_rate": 0.01,
		"learning_rate_decay": 0.1, "decay_epochs": []any{40, 60}, "l2_weight_decay": 1e-4,
		"momentum": 0.9, "total_videos": 239781} {
		train[k] = v
	}
	return Config{
		"MODEL": {"name": "TSM", "format": "pkl", "num_classes": 400, "seg_num": 8, "seglen": 1,
			"image_mean": []any{0.485, 0.456, 0.406}, "image_std": []any{0.229, 0.224, 0.225}, "num_layers": 50},
		"TRAIN": train,
		"VALID": rd(128, "val.list"),
		"TEST":  rd(16, "test.list"),
		"INFER": rd(1, "infer.list"),
	}
}

func diffConfig(t *testing.T, got, want Config) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	for _, sec := range Merge(got, want).Sections() {
		for k := range Merge(got, want)[sec] {
			g, gok := got[sec][k]
			w, wok := want[sec][k]
			if gok != wok || !reflect.DeepEqual(g, w) {
				t.Errorf("[%s] %s: got %#v (present %v), want %#v (present %v)", sec, k, g, gok, w, wok)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("sections: got %v, want %v", got.Sections(), want.Sections())
	}
}

func TestParseINITSM(t *testing.T) {
	t.Parallel()
	got, err := Load("testdata/tsm.txt")
	if err != nil {
		t.Fatal(err)
	}
	diffConfig(t, got, wantTSM())
	if err := tsmSchema.Validate(got); err != nil {
		t.Errorf("Validate(tsm.txt) = %v", err)
	}
}

func TestParseYAMLMatchesINI(t *testing.T) {
	t.Parallel()
	ini, err := Load("testdata/tsm.txt")
	if err != nil {
		t.Fatal(err)
	}
	yml, err := Load("testdata/tsm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	diffConfig(t, yml, ini)
}

func TestParseValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want any
	}{
		{"400", 400},
		{"-3", -3},
		{"+7", 7},
		{"- 2", -2},
		{"1_000", 1000},
		{"0", 0},
		{"00", 0},
		{"0x1f", 31},
		{"0o17", 15},
		{"0b101", 5},
		{"0.01", 0.01},
		{"1e-4", 1e-4},
		{"1E+3", 1000.0},
		{"2e3", 2000.0},
		{".5", 0.5},
		{"5.", 5.0},
		{"-0.25", -0.25},
		{"1_0.5", 10.5},
		{"True", true},
		{"False", false},
		{"None", nil},
		{"True  # comment", true},
		{`"TSM"`, "TSM"},
		{`'TSM'`, "TSM"},
		{`""`, ""},
		{`"a" 'b'`, "ab"},
		{`"tab\there"`, "tab\there"},
		{`'it\'s'`, "it's"},
		{`"\x41\u00e9\101"`, "Aé" + "A"},
		{`"C:\path"`, `C:\path`},
		{`"a#b"`, "a#b"},
		{`"./x.list"  # trailing comment`, "./x.list"},
		{"[1, 2]", []any{1, 2}},
		{"[40, 60]", []any{40, 60}},
		{"[0.485,0.456,0.406]", []any{0.485, 0.456, 0.406}},
		{`["a"]`, []any{"a"}},
		{"[]", []any{}},
		{"[1, 2,]", []any{1, 2}},
		{"[1,\n 2]", []any{1, 2}},
		{"[1, # one\n 2]", []any{1, 2}},
		{"(1, 2)", []any{1, 2}},
		{"(1,)", []any{1}},
		{"()", []any{}},
		{"(5)", 5},
		{"[[1], [2, 3]]", []any{[]any{1}, []any{2, 3}}},
		{"[True, None, 'x', 1.5]", []any{true, nil, "x", 1.5}},
		{"", ""},
		{"   ", ""},
		{"./dataset/kinetics/train.list", "./dataset/kinetics/train.list"},
		{"TSM", "TSM"},
		{"true", "true"},
		{"some words here", "some words here"},
		{"-abc", "-abc"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseValue(tt.in)
			if err != nil {
				t.Fatalf("ParseValue(%q) error: %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseValue(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseValueErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, wantErr string }{
		{"[1, 2", `unexpected end of value, wanted ']'`},
		{"[1 2]", `wanted ',' or ']'`},
		{"[1, abc]", `name "abc" is not a literal`},
		{`"abc`, "unterminated string"},
		{`'abc"`, "unterminated string"},
		{`"a\x4"`, `invalid \x escape`},
		{`"""doc"""`, "triple-quoted"},
		{"{1: 2}", "dict and set values are not supported"},
		{"007", `invalid number "007"`},
		{"1__0", `invalid number "1__0"`},
		{"1_", `invalid number "1_"`},
		{"12abc", `invalid number "12abc"`},
		{"1.2.3", `invalid number "1.2.3"`},
		{"1e", `invalid number "1e"`},
		{"1j", `invalid number "1j"`},
		{"0x", `invalid number "0x"`},
		{"99999999999999999999", "integer 99999999999999999999 is out of range"},
		{"1e400", "number 1e400 is out of range"},
		{"1 2", `unexpected "2" after the value`},
		{"[1] x", `unexpected "x" after the value`},
		{"()]", `unexpected "]" after the value`},
		{strings.Repeat("[", 40) + strings.Repeat("]", 40), "nested deeper than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseValue(tt.in)
			if err == nil {
				t.Fatalf("ParseValue(%q) = %#v, want error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseValue(%q) error %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseINIDialect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     Config
	}{
		{"case-insensitive sections and keys", "[train]\nBatch_Size = 4\n", Config{"TRAIN": {"batch_size": 4}}},
		{"colon delimiter", "[A]\nx: 1\n", Config{"A": {"x": 1}}},
		{"first delimiter wins", "[A]\nx = \"a:b=c\"\n", Config{"A": {"x": "a:b=c"}}},
		{"comments and blanks", "# top\n; also\n[A]\n\n  # indented comment\nx = 1\n\n", Config{"A": {"x": 1}}},
		{"inline comment is Python's", "[A]\nx = 1 # one\ny = [1, 2] ; not a comment for python\n", nil},
		{"continuation lines", "[A]\nx = [1,\n     2,\n     3]\ny = 2\n", Config{"A": {"x": []any{1, 2, 3}, "y": 2}}},
		{"continuation across blank line", "[A]\nx = [1,\n\n  2]\n", Config{"A": {"x": []any{1, 2}}}},
		{"empty value", "[A]\nx =\n", Config{"A": {"x": ""}}},
		{"empty section", "[A]\n[B]\nx = 1\n", Config{"A": {}, "B": {"x": 1}}},
		{"header comment", "[A] # sec\nx = 1\n", Config{"A": {"x": 1}}},
		{"default section", "[DEFAULT]\nuse_gpu = False\n[A]\nx = 1\n[B]\nuse_gpu = True\n",
			Config{"A": {"x": 1, "use_gpu": false}, "B": {"use_gpu": true}}},
		{"interpolation", "[A]\nroot = ./data\nlist = '%(root)s/train.list'\npct = '100%%'\n",
			Config{"A": {"root": "./data", "list": "./data/train.list", "pct": "100%"}}},
		{"bom and crlf", "\ufeff[A]\r\nx = 1\r\n", Config{"A": {"x": 1}}},
		{"no trailing newline", "[A]\nx = 'v'", Config{"A": {"x": "v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseINI("t.txt", strings.NewReader(tt.in))
			if tt.want == nil {
				// The ';' case: Python's eval sees "[1, 2] ; not..." and
				// fails, so it must be an error here too.
				if err == nil || !strings.Contains(err.Error(), "t.txt:3: cannot parse value") {
					t.Fatalf("got %v, %v; want an error on line 3", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			diffConfig(t, got, tt.want)
		})
	}
}

func TestParseINIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"unclosed list", "[MODEL]\nname = 'TSM'\n\n[TRAIN]\nepoch = 1\ndecay_epochs = [1, 2\n",
			`configs/x.txt:6: cannot parse value "[1, 2" for key decay_epochs: unexpected end of value, wanted ']'`},
		{"bad number", "[A]\nx = 1.2.3\n", `configs/x.txt:2: cannot parse value "1.2.3" for key x: invalid number "1.2.3"`},
		{"duplicate key", "[A]\nx = 1\ny = 2\nX = 3\n", "configs/x.txt:4: duplicate key x in [A] (first set on line 2)"},
		{"duplicate section", "[TRAIN]\nx = 1\n[train]\n", "configs/x.txt:3: duplicate section [TRAIN] (first on line 1)"},
		{"key before section", "x = 1\n[A]\n", `configs/x.txt:1: "x = 1" before any [SECTION] header`},
		{"no delimiter", "[A]\njust words\n", `configs/x.txt:2: "just words" is not a "key = value" line`},
		{"missing key", "[A]\n= 3\n", `configs/x.txt:2: missing key before "="`},
		{"unclosed header", "[A\nx = 1\n", `configs/x.txt:1: section header "[A" has no closing ']'`},
		{"junk after header", "[A] x\n", `configs/x.txt:1: unexpected "x" after section header`},
		{"empty header", "[ ]\n", "configs/x.txt:1: empty section name"},
		{"bare percent", "[A]\nfmt = '%05d.jpg'\n", "configs/x.txt:2: key fmt in [A]: bad interpolation: '%' must be followed by '%' or '('"},
		{"unknown reference", "[A]\nx = '%(nope)s'\n", "configs/x.txt:2: key x in [A]: bad interpolation: %(nope)s names no key of [A]"},
		{"reference loop", "[A]\nx = '%(y)s'\ny = '%(x)s'\n", "configs/x.txt:2: key x in [A]: bad interpolation: references nested deeper than 10"},
		{"error on continuation value reports key line", "[A]\nx = [1,\n  2\ny = 1\n", `configs/x.txt:2: cannot parse value "[1,\n2" for key x`},
		{"line too long", "[A]\nx = '" + strings.Repeat("a", maxLineBytes) + "'\n", "configs/x.txt:2: line longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseINI("configs/x.txt", strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseINI = %v, want error %q", got, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestParseYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     Config
		wantErr  string
	}{
		{name: "literal strings as Paddle's create_attr_dict", in: "A:\n  lr: \"1e-4\"\n  mean: '[0.5, 0.25]'\n  name: 'TSM'\n  path: './x'\n",
			want: Config{"A": {"lr": 1e-4, "mean": []any{0.5, 0.25}, "name": "TSM", "path": "./x"}}},
		{name: "None and quoted bools as literal_eval", in: "A:\n  pretrain: None\n  gpu: 'False'\n  plain: True\n  word: none\n",
			want: Config{"A": {"pretrain": nil, "gpu": false, "plain": true, "word": "none"}}},
		{name: "keys lower-cased", in: "a:\n  Batch_Size: 2\n", want: Config{"A": {"batch_size": 2}}},
		{name: "empty section", in: "A:\nB:\n  x: null\n", want: Config{"A": {}, "B": {"x": nil}}},
		{name: "empty document", in: "", want: Config{}},
		{name: "anchors", in: "A:\n  x: &v [1, 2]\nB:\n  x: *v\n", want: Config{"A": {"x": []any{1, 2}}, "B": {"x": []any{1, 2}}}},
		{name: "syntax", in: "A:\n  x: [1, 2\n", wantErr: "c.yaml: yaml: line 1: did not find expected ',' or ']'"},
		{name: "top level list", in: "- 1\n", wantErr: "c.yaml:1: top level must be a mapping of sections"},
		{name: "section not mapping", in: "A: 3\n", wantErr: "c.yaml:1: section A must be a mapping of keys"},
		{name: "nested mapping", in: "A:\n  x:\n    y: 1\n", wantErr: "c.yaml:3: cannot parse value for key x: nested mappings are not supported"},
		{name: "duplicate section by case", in: "train:\n  x: 1\nTRAIN:\n  y: 1\n", wantErr: "c.yaml:3: duplicate section TRAIN (first on line 1)"},
		{name: "duplicate key by case", in: "A:\n  x: 1\n  X: 2\n", wantErr: "c.yaml:3: duplicate key x in [A] (first set on line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseYAML("c.yaml", strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			diffConfig(t, got, tt.want)
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a.ini", "a.cfg", "a.TXT", "a.yml"} {
		p := filepath.Join(dir, name)
		content := "[A]\nx = 1\n"
		if strings.HasSuffix(name, ".yml") {
			content = "A:\n  x: 1\n"
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Load(p)
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		diffConfig(t, got, Config{"A": {"x": 1}})
	}
	if _, err := Load(filepath.Join(dir, "a.json")); err == nil || !strings.Contains(err.Error(), `unknown extension ".json"`) {
		t.Errorf("Load(.json) error = %v", err)
	}
	_, err := Load(filepath.Join(dir, "missing.txt"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("Load(missing) error = %v, want ErrNotExist naming the file", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		c       Config
		wantErr string
		is      error
	}{
		{"defaults valid", tsmSchema.Defaults(), "", nil},
		{"int for float", Config{"TRAIN": {"learning_rate": 1}}, "", nil},
		{"ints for float list", Config{"MODEL": {"image_mean": []any{0, 1, 0.5}}}, "", nil},
		{"None for optional key", Config{"INFER": {"video_path": nil}}, "", nil},
		{"go slices", Config{"TRAIN": {"decay_epochs": []int{1, 2}}, "MODEL": {"image_std": []float64{1}}}, "", nil},
		{"lower-case section", Config{"train": {"epoch": 1}}, "", nil},
		{"unknown key", Config{"TRAIN": {"learning_rat": 0.1}},
			`unknown key "learning_rat" in [TRAIN]; did you mean "learning_rate"?`, ErrUnknownKey},
		{"key of another section", Config{"VALID": {"epoch": 1}},
			`unknown key "epoch" in [VALID]; it is a key of [TRAIN]`, ErrUnknownKey},
		{"key of other sections", Config{"MODEL": {"batch_size": 1}},
			`unknown key "batch_size" in [MODEL]; it is a key of [TRAIN], [INFER], [VALID], [TEST]`, ErrUnknownKey}, // schema order
		{"unknown section", Config{"TRIAN": {"epoch": 1}}, "unknown section [TRIAN]; did you mean [TRAIN]?", ErrUnknownSection},
		{"float for int", Config{"TRAIN": {"epoch": 3.0}}, "TRAIN.epoch: value 3.0 is a float, wanted an int", ErrType},
		{"string for int", Config{"TRAIN": {"batch_size": "8"}}, `TRAIN.batch_size: value "8" is a string, wanted an int`, ErrType},
		{"bool for int", Config{"MODEL": {"seg_num": true}}, "MODEL.seg_num: value True is a bool, wanted an int", ErrType},
		{"int for bool", Config{"TRAIN": {"use_gpu": 1}}, "TRAIN.use_gpu: value 1 is an int, wanted a bool (True or False)", ErrType},
		{"word for bool", Config{"TRAIN": {"use_gpu": "true"}}, `TRAIN.use_gpu: value "true" is a string, wanted a bool (True or False)`, ErrType},
		{"int for string", Config{"MODEL": {"name": 3}}, "MODEL.name: value 3 is an int, wanted a string", ErrType},
		{"scalar for list", Config{"TRAIN": {"decay_epochs": 40}}, "TRAIN.decay_epochs: value 40 is an int, wanted a list of ints", ErrType},
		{"float in int list", Config{"TRAIN": {"decay_epochs": []any{40, 60.5}}}, "TRAIN.decay_epochs: value [40, 60.5] is a list, wanted a list of ints", ErrType},
		{"string in float list", Config{"MODEL": {"image_mean": []any{0.4, "x"}}}, `MODEL.image_mean: value [0.4, "x"] is a list, wanted a list of floats`, ErrType},
		{"None for required", Config{"MODEL": {"num_classes": nil}}, "MODEL.num_classes: value None is None, wanted an int", ErrType},
		{"inf", Config{"TRAIN": {"learning_rate": math.Inf(1)}}, "TRAIN.learning_rate: value inf is not a finite number", ErrType},
		{"nan", Config{"TRAIN": {"momentum": math.NaN()}}, "TRAIN.momentum: value nan is not a finite number", ErrType},
		{"inf in float list", Config{"MODEL": {"image_std": []any{1, math.Inf(-1), 1}}}, "MODEL.image_std: value [1, -inf, 1] is not a finite number", ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tsmSchema.Validate(tt.c)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	keys := tsmSchema.keysOf("TRAIN")
	for in, want := range map[string]string{
		"learning_rat":  "learning_rate",
		"lerning_rate":  "learning_rate",
		"batchsize":     "batch_size",
		"BATCH_SIZE":    "batch_size",
		"epochs":        "epoch",
		"decay_epoch":   "decay_epochs",
		"momentom":      "momentum",
		"l2_decay":      "l2_weight_decay",
		"use_cpu":       "use_gpu",
		"learning_rate": "learning_rate",
	} {
		if got := closest(in, keys); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
	if got := closest("x", nil); got != "" {
		t.Errorf("closest with no candidates = %q", got)
	}
}

func TestDefaultsAndMerge(t *testing.T) {
	t.Parallel()
	d := tsmSchema.Defaults()
	if _, ok := d["INFER"]["video_path"]; ok {
		t.Error("Defaults holds video_path, whose Default is nil")
	}
	if got := d["TRAIN"]["decay_epochs"]; !reflect.DeepEqual(got, []any{40, 60}) {
		t.Errorf("Defaults decay_epochs = %#v, want []any{40, 60}", got)
	}
	file, err := Load("testdata/tsm.txt")
	if err != nil {
		t.Fatal(err)
	}
	over := Config{"TRAIN": {"epoch": 3}, "new": {"x": 1}}
	m := Merge(file, over)
	if m["TRAIN"]["epoch"] != 3 || m["TRAIN"]["batch_size"] != 128 || m["NEW"]["x"] != 1 {
		t.Errorf("Merge: epoch %v batch %v new %v", m["TRAIN"]["epoch"], m["TRAIN"]["batch_size"], m["NEW"])
	}
	if file["TRAIN"]["epoch"] != 65 {
		t.Error("Merge modified base")
	}
	m["MODEL"]["image_mean"].([]any)[0] = 9.0
	if file["MODEL"]["image_mean"].([]any)[0] != 0.485 {
		t.Error("Merge result shares a list with base")
	}
	full := Merge(d, file)
	if full["MODEL"]["topk"] != 5 || full["TRAIN"]["epoch"] != 65 {
		t.Errorf("Merge(defaults, file): topk %v epoch %v", full["MODEL"]["topk"], full["TRAIN"]["epoch"])
	}
}

func TestApplySet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sets    []string
		sec     string
		key     string
		want    any
		wantErr string
	}{
		{name: "int", sets: []string{"TRAIN.epoch=3"}, sec: "TRAIN", key: "epoch", want: 3},
		{name: "section and key case", sets: []string{"train.Epoch=3"}, sec: "TRAIN", key: "epoch", want: 3},
		{name: "int as float", sets: []string{"TRAIN.learning_rate=1"}, sec: "TRAIN", key: "learning_rate", want: 1.0},
		{name: "float", sets: []string{"TRAIN.learning_rate=1e-3"}, sec: "TRAIN", key: "learning_rate", want: 1e-3},
		{name: "bool", sets: []string{"TRAIN.use_gpu=False"}, sec: "TRAIN", key: "use_gpu", want: false},
		{name: "list", sets: []string{"TRAIN.decay_epochs=[5, 8]"}, sec: "TRAIN", key: "decay_epochs", want: []any{5, 8}},
		{name: "float list from ints", sets: []string{"MODEL.image_mean=[0,1,0.5]"}, sec: "MODEL", key: "image_mean", want: []any{0.0, 1.0, 0.5}},
		{name: "bare word string", sets: []string{"MODEL.name=TSN"}, sec: "MODEL", key: "name", want: "TSN"},
		{name: "quoted string", sets: []string{`MODEL.name="TSN"`}, sec: "MODEL", key: "name", want: "TSN"},
		{name: "number-like string", sets: []string{"TRAIN.filelist=123"}, sec: "TRAIN", key: "filelist", want: "123"},
		{name: "path with equals", sets: []string{"TRAIN.filelist=a=b.list"}, sec: "TRAIN", key: "filelist", want: "a=b.list"},
		{name: "key absent from file", sets: []string{"MODEL.topk=3"}, sec: "MODEL", key: "topk", want: 3},
		{name: "section absent from file", sets: []string{"INFER.video_path=v.mp4"}, sec: "INFER", key: "video_path", want: "v.mp4"},
		{name: "None for optional", sets: []string{"INFER.video_path=None"}, sec: "INFER", key: "video_path", want: nil},
		{name: "later wins", sets: []string{"TRAIN.epoch=3", "TRAIN.epoch=4"}, sec: "TRAIN", key: "epoch", want: 4},
		{name: "no equals", sets: []string{"TRAIN.epoch"}, wantErr: `--set "TRAIN.epoch": want SECTION.key=value`},
		{name: "no dot", sets: []string{"epoch=3"}, wantErr: `--set "epoch=3": want SECTION.key=value`},
		{name: "unknown key", sets: []string{"TRAIN.learning_rat=0.1"}, wantErr: `--set "TRAIN.learning_rat=0.1": unknown key "learning_rat" in [TRAIN]; did you mean "learning_rate"?`},
		{name: "unknown section", sets: []string{"TRIAN.epoch=1"}, wantErr: `--set "TRIAN.epoch=1": unknown section [TRIAN]; did you mean [TRAIN]?`},
		{name: "wrong type", sets: []string{"TRAIN.epoch=3.5"}, wantErr: `--set "TRAIN.epoch=3.5": TRAIN.epoch: value 3.5 is a float, wanted an int`},
		{name: "lower-case bool", sets: []string{"TRAIN.use_gpu=true"}, wantErr: `--set "TRAIN.use_gpu=true": TRAIN.use_gpu: value "true" is a string, wanted a bool (True or False)`},
		{name: "unparsable", sets: []string{"TRAIN.decay_epochs=[1,"}, wantErr: `--set "TRAIN.decay_epochs=[1,": cannot parse value "[1," for TRAIN.decay_epochs: unexpected end of value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load("testdata/tsm.txt")
			if err != nil {
				t.Fatal(err)
			}
			err = ApplySet(c, tsmSchema, tt.sets)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("ApplySet error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := c[tt.sec][tt.key]
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s.%s = %#v (present %v), want %#v", tt.sec, tt.key, got, ok, tt.want)
			}
			if err := tsmSchema.Validate(c); err != nil {
				t.Errorf("Validate after ApplySet: %v", err)
			}
		})
	}
}

func TestApplyFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sections []string // nil: every section a flag may set
		key, val string
		want     map[string]any // section -> value; sections not listed keep the file's value or stay absent
		wantErr  string
	}{
		{name: "batch_size everywhere it exists", key: "batch_size", val: "8",
			want: map[string]any{"TRAIN": 8, "VALID": 8, "TEST": 8, "INFER": 8}},
		{name: "batch_size in train mode", sections: ModeSections("train"), key: "batch_size", val: "8",
			want: map[string]any{"TRAIN": 8, "VALID": 8, "TEST": 16, "INFER": 1}},
		{name: "batch_size in test mode", sections: ModeSections("test"), key: "batch-size", val: "2",
			want: map[string]any{"TRAIN": 128, "VALID": 128, "TEST": 2, "INFER": 1}},
		{name: "learning_rate only where present", key: "learning_rate", val: "0.001",
			want: map[string]any{"TRAIN": 0.001, "VALID": nil}},
		{name: "epoch only TRAIN", key: "--epoch", val: "2", want: map[string]any{"TRAIN": 2, "VALID": nil, "MODEL": nil}},
		{name: "use_gpu where it exists", key: "use_gpu", val: "False", want: map[string]any{"TRAIN": false, "VALID": nil, "TEST": nil}},
		{name: "never MODEL", key: "num_classes", val: "10", want: map[string]any{"MODEL": 400}},
		{name: "unknown flag ignored", key: "save_dir", val: "x", want: map[string]any{"TRAIN": nil}},
		{name: "string key takes raw text", key: "filelist", val: "my.list", sections: ModeSections("infer"),
			want: map[string]any{"INFER": "my.list", "TRAIN": "./dataset/kinetics/train.list"}},
		{name: "bad int", key: "batch_size", val: "eight", wantErr: `flag --batch_size: TRAIN.batch_size: value "eight" is a string, wanted an int`},
		{name: "float for int", key: "epoch", val: "2.5", wantErr: "flag --epoch: TRAIN.epoch: value 2.5 is a float, wanted an int"},
		{name: "bad bool", key: "use_gpu", val: "yes", wantErr: `flag --use_gpu: TRAIN.use_gpu: value "yes" is a string, wanted a bool (True or False)`},
		{name: "unparsable", key: "learning_rate", val: "1e", wantErr: `flag --learning_rate: cannot parse value "1e" for TRAIN.learning_rate: invalid number "1e"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load("testdata/tsm.txt")
			if err != nil {
				t.Fatal(err)
			}
			if tt.sections == nil {
				tt.sections = []string{"TRAIN", "VALID", "TEST", "INFER"}
			}
			err = ApplyFlagTo(c, tsmSchema, tt.sections, tt.key, tt.val)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			key := strings.ReplaceAll(strings.TrimLeft(tt.key, "-"), "-", "_")
			for sec, want := range tt.want {
				got, ok := c[sec][key]
				if want == nil {
					if ok {
						t.Errorf("%s.%s = %#v, want absent", sec, key, got)
					}
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s.%s = %#v, want %#v", sec, key, got, want)
				}
			}
		})
	}
}

func TestModeSections(t *testing.T) {
	t.Parallel()
	for mode, want := range map[string][]string{
		"train": {"TRAIN", "VALID"}, "TEST": {"TEST"}, "infer": {"INFER"}, "valid": {"VALID"}, "x": nil,
	} {
		if got := ModeSections(mode); !reflect.DeepEqual(got, want) {
			t.Errorf("ModeSections(%q) = %v, want %v", mode, got, want)
		}
	}
}

// FuzzParseINI checks that no input makes the parser panic, and that every
// error names the file.
func FuzzParseINI(f *testing.F) {
	seed, err := os.ReadFile("testdata/tsm.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	for _, s := range []string{"[A]\nx = [1, (2,), 'a\\x41', -.5e-3]\n", "[DEFAULT]\na=%(b)s\nb=%%\n[B]\n", "[A]\nx = [\n  1,\n", "x", "[A]\n = \n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseINI("f.txt", strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.txt") && !strings.HasPrefix(err.Error(), "read f.txt") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		// The config crosses to the plugin as JSON (sdk's convert).
		if _, err := json.Marshal(c); err != nil && !strings.Contains(err.Error(), "unsupported value") {
			t.Errorf("JSON of parsed config: %v", err)
		}
	})
}

func ExampleSchema_Validate() {
	s := Schema{{Section: "TRAIN", Name: "learning_rate", Type: TypeFloat, Default: 0.01}}
	c, _ := ParseINI("x.txt", strings.NewReader("[train]\nlearning_rat = 0.1\n"))
	fmt.Println(s.Validate(c))
	// Output: unknown key "learning_rat" in [TRAIN]; did you mean "learning_rate"?
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Example shows the host's sequence: the file over the schema's defaults,
// then flags (Paddle's rule: only keys the run's sections have, so
// --batch_size reaches TRAIN and VALID but --epoch only TRAIN), then --set,
// then validation and the JSON for the plugin.
func Example() {
	schema := Schema{
		{Section: "MODEL", Name: "seg_num", Type: TypeInt, Default: 8},
		{Section: "MODEL", Name: "temporal_shift", Type: TypeBool, Default: true},
		{Section: "TRAIN", Name: "batch_size", Type: TypeInt, Default: 16},
		{Section: "TRAIN", Name: "epoch", Type: TypeInt, Default: 10},
		{Section: "VALID", Name: "batch_size", Type: TypeInt, Default: 16},
	}
	c, err := ParseINI("small.txt", strings.NewReader("[TRAIN]\nbatch_size = 4\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	c = Merge(schema.Defaults(), c)
	for _, f := range [][2]string{{"batch_size", "2"}, {"epoch", "3"}} {
		if err := ApplyFlagTo(c, schema, ModeSections("train"), f[0], f[1]); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := ApplySet(c, schema, []string{"MODEL.temporal_shift=False"}); err != nil {
		fmt.Println(err)
		return
	}
	if err := schema.Validate(c); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := json.Marshal(c) // as sdk sends it
	fmt.Println(string(b))
	// Output: {"MODEL":{"seg_num":8,"temporal_shift":false},"TRAIN":{"batch_size":2,"epoch":3},"VALID":{"batch_size":2}}
}

func TestSchemaCheck(t *testing.T) {
	t.Parallel()
	if err := tsmSchema.Check(); err != nil {
		t.Fatalf("tsmSchema.Check() = %v", err)
	}
	tests := []struct {
		name string
		s    Schema
		want string
	}{
		{"empty name", Schema{{Section: "A", Type: TypeInt}}, "empty section or name"},
		{"unknown type", Schema{{Section: "A", Name: "x", Type: "int64"}}, `schema key A.x: unknown type "int64"`},
		{"twice", Schema{{Section: "A", Name: "x", Type: TypeInt}, {Section: "a", Name: "X", Type: TypeInt}}, "schema key A.x declared twice"},
		{"bad default", Schema{{Section: "A", Name: "x", Type: TypeInt, Default: 1.5}}, "schema default: A.x: value 1.5 is a float, wanted an int"},
		{"bad list default", Schema{{Section: "A", Name: "x", Type: TypeIntList, Default: []float64{1}}}, "schema default: A.x: value [1.0] is a list, wanted a list of ints"},
	}
	for _, tt := range tests {
		if err := tt.s.Check(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Check() = %v, want %q", tt.name, err, tt.want)
		}
	}
}
