package weights

import (
	"fmt"
	"strings"
)

// DType is a Paddle VarType data type, with Paddle's enum values (they
// appear as is in the TensorDesc of every parameter file).
type DType int32

// The data types a parameter file may hold.
const (
	Bool  DType = 0
	Int16 DType = 1
	Int32 DType = 2
	Int64 DType = 3
	FP16  DType = 4
	FP32  DType = 5
	FP64  DType = 6
	Uint8 DType = 20
	Int8  DType = 21
	BF16  DType = 22
)

var dtypeInfo = map[DType]struct {
	name string
	size int
}{
	Bool:  {"BOOL", 1},
	Int16: {"INT16", 2},
	Int32: {"INT32", 4},
	Int64: {"INT64", 8},
	FP16:  {"FP16", 2},
	FP32:  {"FP32", 4},
	FP64:  {"FP64", 8},
	Uint8: {"UINT8", 1},
	Int8:  {"INT8", 1},
	BF16:  {"BF16", 2},
}

// String returns Paddle's name of the type (FP32, INT64, ...).
func (d DType) String() string {
	if i, ok := dtypeInfo[d]; ok {
		return i.name
	}
	return fmt.Sprintf("DType(%d)", int32(d))
}

// Size returns the size of one element in bytes, 0 for an unknown type.
func (d DType) Size() int { return dtypeInfo[d].size }

// Valid reports whether d is one of the data types above.
func (d DType) Valid() bool { _, ok := dtypeInfo[d]; return ok }

// ParseDType returns the type Paddle names s (FP32, INT64, ...; any case).
func ParseDType(s string) (DType, error) {
	for d, i := range dtypeInfo {
		if strings.EqualFold(i.name, s) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("weights: unknown dtype %q", s)
}
