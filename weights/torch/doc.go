// Package torch reads PyTorch checkpoints (torch.save) without PyTorch:
// the zip format of torch >= 1.6 (archive/data.pkl plus one file per
// storage) and the legacy format before it (MIT's 2019 TSM checkpoints:
// magic number, protocol version and system info pickles, the object
// pickle, the storage key list, then the raw storages).
//
// Both hold a pickle that names its storages by persistent id; it is
// decoded through internal/pickle with an allow-list of what a state
// dict holds (tensors, typed storages, OrderedDict, plain containers,
// numbers, strings, numpy scalars for metadata). Any other global fails
// the read with its name; nothing is imported or executed. Storages may
// be float32, float16, bfloat16, float64, int64, int32 or uint8; a tensor
// view (offset and strides into a storage) is copied out row-major.
//
// It imports only the standard library, weights and internal/pickle
// (weights/ is stdlib-only; internal/depcheck checks it).
package torch
