package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// paddleParse is Paddle's parse_config (PaddleCV/video/config.py): Python's
// ConfigParser, then eval of each value, keeping the text when eval fails.
// It reads a JSON list of INI texts (or, with "values", of single values)
// and prints each result with its Python types spelled out.
const paddleParse = `
import json, sys, warnings
from configparser import ConfigParser
warnings.simplefilter("ignore")
def enc(v):
    if v is None: return ["none"]
    if isinstance(v, bool): return ["bool", v]
    if isinstance(v, int): return ["int", v]
    if isinstance(v, float): return ["float", v]
    if isinstance(v, str): return ["str", v]
    if isinstance(v, (list, tuple)): return ["list", [enc(x) for x in v]]
    return ["other", repr(v)]
def ev(v):
    try:
        return eval(v)
    except Exception:
        return v
mode, inputs = sys.argv[1], json.load(sys.stdin)
out = []
for text in inputs:
    if mode == "values":
        out.append(enc(ev(text)))
        continue
    p = ConfigParser()
    p.read_string(text)
    cfg = {}
    for sec in p.sections():
        cfg[sec.upper()] = {k: enc(ev(v)) for k, v in p.items(sec)}
    out.append(cfg)
print(json.dumps(out))
`

func runPython(t *testing.T, mode string, inputs []string) []json.RawMessage {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: cross-check against Paddle's parse_config skipped; the table tests still run")
	}
	in, _ := json.Marshal(inputs)
	cmd := exec.Command(py, "-c", paddleParse, mode)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var res []json.RawMessage
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(inputs) {
		t.Fatalf("python3 output %q: %v", out, err)
	}
	return res
}

// fromPython turns a typed value printed by paddleParse into the Go value
// ParseValue gives for it.
func fromPython(raw json.RawMessage) (any, error) {
	var tv []json.RawMessage
	if err := json.Unmarshal(raw, &tv); err != nil || len(tv) == 0 {
		return nil, fmt.Errorf("bad typed value %s", raw)
	}
	var kind string
	json.Unmarshal(tv[0], &kind)
	switch kind {
	case "none":
		return nil, nil
	case "bool":
		var b bool
		err := json.Unmarshal(tv[1], &b)
		return b, err
	case "int":
		var i int
		err := json.Unmarshal(tv[1], &i)
		return i, err
	case "float":
		var f float64
		err := json.Unmarshal(tv[1], &f)
		return f, err
	case "str":
		var s string
		err := json.Unmarshal(tv[1], &s)
		return s, err
	case "list":
		var items []json.RawMessage
		if err := json.Unmarshal(tv[1], &items); err != nil {
			return nil, err
		}
		out := []any{}
		for _, it := range items {
			v, err := fromPython(it)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("python produced %s", raw)
}

func TestParseValueMatchesPython(t *testing.T) {
	t.Parallel()
	inputs := []string{"400", "-3", "+7", "- 2", "1_000", "0", "00", "0x1f", "0o17", "0b101", "0.01", "1e-4",
		"1E+3", ".5", "5.", "-0.25", "1_0.5", "True", "False", "None", "True  # comment", `"TSM"`, `'TSM'`,
		`""`, `"a" 'b'`, `"tab\there"`, `'it\'s'`, `"\x41\u00e9\101"`, `"C:\path"`, `"a#b"`,
		`"./x.list"  # trailing comment`, "[1, 2]", "[0.485,0.456,0.406]", `["a"]`, "[]", "[1, 2,]",
		"[1,\n 2]", "[1, # one\n 2]", "(1, 2)", "(1,)", "()", "(5)", "[[1], [2, 3]]", "[True, None, 'x', 1.5]",
		"", "./dataset/kinetics/train.list", "TSM", "true", "some words here", "-abc", "0.1e-400"}
	res := runPython(t, "values", inputs)
	for i, in := range inputs {
		want, err := fromPython(res[i])
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		got, err := ParseValue(in)
		if err != nil {
			t.Errorf("ParseValue(%q): %v; Python gives %#v", in, err, want)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseValue(%q) = %#v, Paddle's eval gives %#v", in, got, want)
		}
	}
}

func TestParseINIMatchesPaddle(t *testing.T) {
	t.Parallel()
	seed := mustRead(t, "testdata/tsm.txt")
	inputs := []string{
		seed,
		"[train]\nBatch_Size = 4\n",
		"[A]\nx: 1\n",
		"[A]\nx = \"a:b=c\"\n",
		"# top\n; also\n[A]\n\n  # indented comment\nx = 1\n\n",
		"[A]\nx = 1 # one\n",
		"[A]\nx = [1,\n     2,\n     3]\ny = 2\n",
		"[A]\nx = [1,\n\n  2]\n",
		"[A]\nx =\n",
		"[A]\n[B]\nx = 1\n",
		"[DEFAULT]\nuse_gpu = False\n[A]\nx = 1\n[B]\nuse_gpu = True\n",
		"[A]\nroot = ./data\nlist = '%(root)s/train.list'\npct = '100%%'\n",
		"[A]\r\nx = 1\r\n",
		"[A]\nx = 'v'",
		"[A]\n  y = 2\nz = 3\n",
	}
	res := runPython(t, "ini", inputs)
	for i, in := range inputs {
		var secs map[string]map[string]json.RawMessage
		if err := json.Unmarshal(res[i], &secs); err != nil {
			t.Fatal(err)
		}
		want := Config{}
		for sec, kv := range secs {
			want[sec] = map[string]any{}
			for k, raw := range kv {
				v, err := fromPython(raw)
				if err != nil {
					t.Fatal(err)
				}
				want[sec][k] = v
			}
		}
		got, err := ParseINI("t.txt", strings.NewReader(in))
		if err != nil {
			t.Errorf("input %d %q: %v", i, in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("input %d %q:\n got %#v\nPaddle %#v", i, in, got, want)
		}
	}
}
