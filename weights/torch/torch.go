package torch

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/zoo-ml/zoo/internal/pickle"
	"github.com/zoo-ml/zoo/weights"
)

// MaxFileSize caps the checkpoint read into memory: a TSM-R152 checkpoint
// is about 240 MB; 4 GiB is far above any zoo model.
const MaxFileSize = 4 << 30

// Checkpoint is what a torch.save file holds.
type Checkpoint struct {
	Format  string            // "zip" or "legacy"
	Tensors []*weights.Tensor // the state dict's tensors in the file's order, named as saved
	// Keys are the checkpoint dict's top-level keys ({"epoch", "arch",
	// "state_dict", "best_prec1"} for MIT's, {"meta", "state_dict"} for
	// mmaction2's); nil when the file is a bare state dict.
	Keys []string
	// Skipped names the state dict's entries that are not tensors.
	Skipped []string
}

// legacyMagic is torch.serialization.MAGIC_NUMBER, the first pickle of a
// legacy file.
const legacyMagic = "0x1950a86a20f9469cfc6c"

// IsTorch reports whether path looks like a torch.save file: a zip
// archive, or a pickle whose first value is the legacy magic number.
func IsTorch(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [16]byte
	n, _ := io.ReadFull(f, b[:])
	return isTorch(b[:n])
}

func isTorch(b []byte) bool {
	if bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		return true
	}
	// PROTO 2, LONG1 of 10 bytes: the magic number.
	return bytes.HasPrefix(b, []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"))
}

// Read reads a torch.save checkpoint.
func Read(file string) (*Checkpoint, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > MaxFileSize {
		return nil, fmt.Errorf("weights: %s: not a regular file of at most %d bytes", file, int64(MaxFileSize))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	c, err := Decode(b)
	if err != nil {
		var fe *weights.FormatError
		if errors.As(err, &fe) {
			e := *fe
			e.Path = file
			return nil, &e
		}
		return nil, fmt.Errorf("weights: %s: %w", file, err)
	}
	return c, nil
}

// Decode is Read on the bytes of a file. Tensor data never shares
// memory with b.
func Decode(b []byte) (*Checkpoint, error) {
	if bytes.HasPrefix(b, []byte("PK")) {
		return decodeZip(b)
	}
	return decodeLegacy(b)
}

func formatErr(off int64, format string, a ...any) error {
	return &weights.FormatError{Offset: off, Reason: "torch: " + fmt.Sprintf(format, a...)}
}

// pickleErr turns an internal/pickle error into a FormatError at base +
// its offset.
func pickleErr(err error, base int64, what string) error {
	var pe *pickle.Error
	if errors.As(err, &pe) {
		return &weights.FormatError{Offset: base + pe.Offset, Reason: "torch: " + what + ": " + pe.Reason}
	}
	return &weights.FormatError{Offset: base, Reason: "torch: " + what + ": " + err.Error()}
}

func decodeZip(b []byte) (*Checkpoint, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, formatErr(0, "not a torch zip checkpoint: %v", err)
	}
	files := map[string]*zip.File{}
	prefix := ""
	for _, f := range zr.File {
		files[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 {
			prefix = dir
		}
	}
	if prefix == "" {
		return nil, formatErr(0, "zip archive without a <name>/data.pkl: not a torch.save file")
	}
	if bo, ok := files[prefix+"byteorder"]; ok {
		s, err := readEntry(bo, 16)
		if err != nil {
			return nil, err
		}
		if string(s) != "little" {
			return nil, formatErr(0, "byte order %q, only little-endian checkpoints are read", s)
		}
	}
	pkl, err := readEntry(files[prefix+"data.pkl"], MaxFileSize)
	if err != nil {
		return nil, err
	}
	storages := map[string]*storage{}
	load := func(pid any) (any, error) {
		p, err := parsePID(pid, 5)
		if err != nil {
			return nil, err
		}
		if s, ok := storages[p.key]; ok {
			if s.dtype != p.dtype {
				return nil, fmt.Errorf("storage %s used as %s and %s", p.key, s.dtype, p.dtype)
			}
			return s, nil
		}
		f, ok := files[prefix+"data/"+p.key]
		if !ok {
			return nil, fmt.Errorf("storage %s: no entry %sdata/%s in the archive", p.key, prefix, p.key)
		}
		n := p.numel * int64(p.dtype.Size())
		if p.numel < 0 || p.numel > weights.MaxElements || int64(f.UncompressedSize64) != n {
			return nil, fmt.Errorf("storage %s: %d elements of %s announced, the entry holds %d bytes", p.key, p.numel, p.dtype, f.UncompressedSize64)
		}
		data, err := readEntry(f, n)
		if err != nil {
			return nil, err
		}
		s := &storage{dtype: p.dtype, data: data}
		storages[p.key] = s
		return s, nil
	}
	top, err := (&pickle.Decoder{Globals: globals, PersistentLoad: load}).Decode(pkl)
	if err != nil {
		return nil, pickleErr(err, 0, prefix+"data.pkl")
	}
	c, err := stateDict(top)
	if err != nil {
		return nil, err
	}
	c.Format = "zip"
	return c, nil
}

func readEntry(f *zip.File, max int64) ([]byte, error) {
	if f == nil {
		return nil, formatErr(0, "missing archive entry")
	}
	if f.UncompressedSize64 > uint64(max) {
		return nil, formatErr(0, "entry %s of %d bytes, above %d", f.Name, f.UncompressedSize64, max)
	}
	r, err := f.Open()
	if err != nil {
		return nil, formatErr(0, "entry %s: %v", f.Name, err)
	}
	defer r.Close()
	b := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, formatErr(0, "entry %s: %v", f.Name, err)
	}
	return b, nil
}

func decodeLegacy(b []byte) (*Checkpoint, error) {
	d := &pickle.Decoder{Globals: globals}
	off := 0
	next := func(what string) (any, error) {
		v, n, err := d.DecodePrefix(b[off:])
		if err != nil {
			return nil, pickleErr(err, int64(off), what)
		}
		off += n
		return v, nil
	}
	magic, err := next("magic number")
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(interface{ Text(int) string }); !ok || "0x"+m.Text(16) != legacyMagic {
		return nil, formatErr(0, "neither a zip archive nor a legacy torch.save file (no magic number)")
	}
	proto, err := next("protocol version")
	if err != nil {
		return nil, err
	}
	if proto != int64(1001) {
		return nil, formatErr(int64(off), "legacy protocol version %v, want 1001", proto)
	}
	info, err := next("system info")
	if err != nil {
		return nil, err
	}
	if di, ok := info.(*pickle.Dict); ok {
		if le, ok := di.Get("little_endian"); ok && le != true {
			return nil, formatErr(int64(off), "saved on a big-endian machine; only little-endian checkpoints are read")
		}
	}
	type ref struct {
		s     *storage
		numel int64
	}
	storages := map[string]*ref{}
	var views []*storage
	d.PersistentLoad = func(pid any) (any, error) {
		p, err := parsePID(pid, 6)
		if err != nil {
			return nil, err
		}
		r, ok := storages[p.key]
		if !ok {
			if p.numel < 0 || p.numel > weights.MaxElements {
				return nil, fmt.Errorf("storage %s of %d elements", p.key, p.numel)
			}
			r = &ref{s: &storage{dtype: p.dtype}, numel: p.numel}
			storages[p.key] = r
		} else if r.s.dtype != p.dtype {
			return nil, fmt.Errorf("storage %s used as %s and %s", p.key, r.s.dtype, p.dtype)
		}
		if p.view == nil {
			return r.s, nil
		}
		// A view (legacy storages could share memory): (key, offset, size).
		v := &storage{dtype: p.dtype, base: r.s, offset: p.view[1], numel: p.view[2]}
		views = append(views, v)
		return v, nil
	}
	top, err := next("object")
	if err != nil {
		return nil, err
	}
	d.PersistentLoad = nil
	keysV, err := next("storage keys")
	if err != nil {
		return nil, err
	}
	keys, ok := keysV.(*pickle.List)
	if !ok {
		return nil, formatErr(int64(off), "storage keys are %s, want a list", pickle.TypeName(keysV))
	}
	for _, k := range keys.Items {
		key, ok := pickle.String(k)
		if !ok {
			return nil, formatErr(int64(off), "storage key of type %s", pickle.TypeName(k))
		}
		if len(b)-off < 8 {
			return nil, formatErr(int64(off), "storage %s: truncated", key)
		}
		n := int64(binary.LittleEndian.Uint64(b[off:]))
		off += 8
		r, ok := storages[key]
		if !ok {
			return nil, formatErr(int64(off), "storage %s is not used by the object", key)
		}
		sz := int64(r.s.dtype.Size())
		if n != r.numel || n > int64(len(b)-off)/sz {
			return nil, formatErr(int64(off), "storage %s: %d elements, %d announced, %d bytes left", key, n, r.numel, len(b)-off)
		}
		r.s.data = bytes.Clone(b[off : off+int(n*sz)])
		off += int(n * sz)
	}
	for key, r := range storages {
		if r.s.data == nil && r.numel > 0 {
			return nil, formatErr(int64(off), "storage %s is missing from the file", key)
		}
	}
	for _, v := range views {
		if v.offset < 0 || v.numel < 0 || v.offset > int64(len(v.base.data))/int64(v.dtype.Size())-v.numel {
			return nil, formatErr(int64(off), "storage view out of its storage")
		}
	}
	c, err := stateDict(top)
	if err != nil {
		return nil, err
	}
	c.Format = "legacy"
	return c, nil
}

type pid struct {
	key   string
	dtype weights.DType
	numel int64
	view  []int64 // legacy: key's offset and size, or nil
}

// parsePID reads ('storage', storage_type, key, location, numel[, view]).
func parsePID(v any, n int) (*pid, error) {
	t, ok := v.(pickle.Tuple)
	if !ok || len(t) != n {
		return nil, fmt.Errorf("persistent id %s, want a tuple of %d", pickle.TypeName(v), n)
	}
	if s, _ := pickle.String(t[0]); s != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v, want storage", t[0])
	}
	g, ok := t[1].(pickle.Global)
	dt, known := storageTypes[g.Name]
	if !ok || g.Module != "torch" || !known {
		return nil, fmt.Errorf("persistent id with storage type %v", t[1])
	}
	key, ok := pickle.String(t[2])
	numel, ok2 := t[4].(int64)
	if !ok || !ok2 {
		return nil, errors.New("persistent id: key or size of the wrong type")
	}
	p := &pid{key: key, dtype: dt, numel: numel}
	if n == 6 && t[5] != nil {
		vt, ok := t[5].(pickle.Tuple)
		if !ok || len(vt) != 3 {
			return nil, errors.New("persistent id: bad view metadata")
		}
		off, ok1 := vt[1].(int64)
		sz, ok2 := vt[2].(int64)
		if !ok1 || !ok2 {
			return nil, errors.New("persistent id: bad view metadata")
		}
		// The data lives under the root key; the view is a slice of it.
		p.view = []int64{0, off, sz}
	}
	return p, nil
}
