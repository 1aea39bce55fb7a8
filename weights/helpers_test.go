package weights

import (
	"encoding/binary"
	"github.com/zoo-ml/zoo/internal/shareddata"
	"path/filepath"
	"testing"
)

// dataDir finds the shared test data: $ZOO_SHARED_DATA, else
// <repo>/../shared/data (how CI lays out the checkout). Missing data is a
// failure, not a skip.
func dataDir(t testing.TB) string { return shareddata.Dir(t) }

func stemDir(t testing.TB) string { return filepath.Join(dataDir(t), "paddle", "resnet50_stem") }

// record builds a LoDTensor record by hand, with every field under the
// test's control.
type record struct {
	lodVersion uint32
	lod        [][]uint64
	lodLevels  *uint64 // overrides len(lod) when set
	tenVersion uint32
	desc       []byte
	descSize   *int32 // overrides len(desc) when set
	data       []byte
}

func (r record) bytes() []byte {
	b := binary.LittleEndian.AppendUint32(nil, r.lodVersion)
	n := uint64(len(r.lod))
	if r.lodLevels != nil {
		n = *r.lodLevels
	}
	b = binary.LittleEndian.AppendUint64(b, n)
	for _, l := range r.lod {
		b = binary.LittleEndian.AppendUint64(b, uint64(8*len(l)))
		for _, o := range l {
			b = binary.LittleEndian.AppendUint64(b, o)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, r.tenVersion)
	ds := int32(len(r.desc))
	if r.descSize != nil {
		ds = *r.descSize
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(ds))
	b = append(b, r.desc...)
	return append(b, r.data...)
}

func ptr[T any](v T) *T { return &v }

// desc builds a TensorDesc with unpacked dims.
func desc(dt int64, dims ...int64) []byte {
	b := []byte{0x08}
	b = binary.AppendUvarint(b, uint64(dt))
	for _, d := range dims {
		b = append(b, 0x10)
		b = binary.AppendUvarint(b, uint64(d))
	}
	return b
}
