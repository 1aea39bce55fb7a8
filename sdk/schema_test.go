package sdk

import (
	"reflect"
	"strings"
	"testing"
)

type schemaReader struct {
	BatchSize int    `mapstructure:"batch_size" help:"clips per step"`
	Filelist  string `mapstructure:"filelist"`
	hidden    int    // unexported: mapstructure never sets it
}

type schemaTrain struct {
	schemaReader `mapstructure:",squash"`
	Epoch        int       `mapstructure:"epoch"`
	Rate         float64   `mapstructure:"learning_rate"`
	Decay        []int     `mapstructure:"decay_epochs"`
	Mean         []float64 `mapstructure:"image_mean"`
	Names        []string  `mapstructure:"names"`
	Shift        bool      `mapstructure:"temporal_shift" help:"False builds TSN"`
	Ignored      int       `mapstructure:"-"`
}

type schemaConfig struct {
	Train schemaTrain  `mapstructure:"TRAIN"`
	Test  schemaReader `mapstructure:"TEST"`
}

func TestSchemaOf(t *testing.T) {
	t.Parallel()
	def := schemaConfig{
		Train: schemaTrain{schemaReader: schemaReader{BatchSize: 128, hidden: 3}, Epoch: 65, Rate: 0.01, Decay: []int{40, 60}, Mean: []float64{0.5}, Shift: true},
		Test:  schemaReader{BatchSize: 16, Filelist: "test.list"},
	}
	want := []ConfigKey{
		{Section: "TRAIN", Name: "batch_size", Type: "int", Default: 128, Help: "clips per step"},
		{Section: "TRAIN", Name: "filelist", Type: "string", Default: ""},
		{Section: "TRAIN", Name: "epoch", Type: "int", Default: 65},
		{Section: "TRAIN", Name: "learning_rate", Type: "float", Default: 0.01},
		{Section: "TRAIN", Name: "decay_epochs", Type: "[]int", Default: []int{40, 60}},
		{Section: "TRAIN", Name: "image_mean", Type: "[]float", Default: []float64{0.5}},
		{Section: "TRAIN", Name: "names", Type: "[]string", Default: []string{}},
		{Section: "TRAIN", Name: "temporal_shift", Type: "bool", Default: true, Help: "False builds TSN"},
		{Section: "TEST", Name: "batch_size", Type: "int", Default: 16, Help: "clips per step"},
		{Section: "TEST", Name: "filelist", Type: "string", Default: "test.list"},
	}
	for _, v := range []any{def, &def} {
		got, err := SchemaOf(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("SchemaOf(%T):\n got %#v\nwant %#v", v, got, want)
		}
	}
	// The defaults are copies: changing the struct later leaves them.
	got, _ := SchemaOf(def)
	def.Train.Decay[0] = 1
	if d := got[4].Default.([]int); d[0] != 40 {
		t.Errorf("decay_epochs default shares the struct's slice: %v", d)
	}
}

func TestSchemaOfErrors(t *testing.T) {
	t.Parallel()
	type sec struct {
		N int `mapstructure:"n"`
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"not a struct", 3, "int is not a struct"},
		{"nil pointer", (*schemaConfig)(nil), "*sdk.schemaConfig is not a struct"},
		{"section without tag", struct{ A sec }{}, ".A: no mapstructure tag"},
		{"section in lower case", struct {
			A sec `mapstructure:"train"`
		}{}, `section tag "train": want an upper-case name`},
		{"section without a name", struct {
			A sec `mapstructure:""`
		}{}, `section tag "": want an upper-case name`},
		{"section twice", struct {
			A sec `mapstructure:"X"`
			B sec `mapstructure:"X"`
		}{}, ".B: section X declared twice"},
		{"section not a struct", struct {
			A int `mapstructure:"X"`
		}{}, "section X is a int, want a struct"},
		{"key without tag", struct {
			A struct{ N int } `mapstructure:"X"`
		}{}, ".N: no mapstructure tag"},
		{"key in upper case", struct {
			A struct {
				N int `mapstructure:"Batch"`
			} `mapstructure:"X"`
		}{}, `N (X.Batch): key tag "Batch": want a lower-case name`},
		{"key with options", struct {
			A struct {
				N int `mapstructure:"n,omitempty"`
			} `mapstructure:"X"`
		}{}, `key tag "n,omitempty"`},
		{"key twice through squash", struct {
			A struct {
				sec `mapstructure:",squash"`
				M   int `mapstructure:"n"`
			} `mapstructure:"X"`
		}{}, "M (X.n): key declared twice in [X]"},
		{"unsupported type", struct {
			A struct {
				N float32 `mapstructure:"n"`
			} `mapstructure:"X"`
		}{}, "N (X.n): type float32: want int, float64"},
		{"nested struct", struct {
			A struct {
				N sec `mapstructure:"n"`
			} `mapstructure:"X"`
		}{}, "type sdk.sec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := SchemaOf(tt.v)
			if err == nil || !strings.HasPrefix(err.Error(), "sdk.SchemaOf: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("SchemaOf error = %v (keys %v), want one containing %q", err, keys, tt.want)
			}
		})
	}
}

// TestSchemaOfDecodes: every key SchemaOf lists is one Config.Decode fills,
// and a config of the schema's defaults decodes back to the struct.
func TestSchemaOfDecodes(t *testing.T) {
	t.Parallel()
	def := schemaConfig{
		Train: schemaTrain{schemaReader: schemaReader{BatchSize: 128, Filelist: "a"}, Epoch: 65, Rate: 0.01, Decay: []int{40, 60}, Mean: []float64{0.5}, Names: []string{"x"}, Shift: true},
		Test:  schemaReader{BatchSize: 16, Filelist: "b"},
	}
	keys, err := SchemaOf(def)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{}
	for _, k := range keys {
		if c[k.Section] == nil {
			c[k.Section] = map[string]any{}
		}
		c[k.Section][k.Name] = k.Default
	}
	var got schemaConfig
	if err := c.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, def) {
		t.Errorf("Decode(schema defaults) = %+v, want %+v", got, def)
	}
}
