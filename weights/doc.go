// Package weights reads and writes PaddlePaddle parameter files and keeps
// the local store of pretrained weight sets.
//
// Parameter files: a fluid LoDTensor record per variable (save_params,
// save_persistables, save_inference_model) or the same records
// concatenated in sorted-name order (__params__, .pdiparams). Decode and
// Encode handle one record; Encode writes exactly the bytes Paddle writes,
// so Paddle tools read what zoo saves and a file read then written is
// byte-identical. ReadFile, ReadDir, ReadCombined and their Write
// counterparts work on files and directories; every write is atomic (a
// temporary sibling, fsync, rename). Check and Load verify the variables a
// model needs (name, dtype, dims) and report the extra ones, which
// checkpoints carry as optimizer state.
//
// Paddle 1.6+ and 2.x also save parameters as a .pdparams pickle of
// numpy arrays: ReadPdparams and WritePdparams, through internal/pickle
// with an allow-list of numpy's globals. ReadParams reads any of these
// forms (zoo weights inspect).
//
// Every size read from a header is checked against what the file can hold
// before anything is allocated: a corrupt or hostile file gives an error
// that wraps ErrFormat, never a panic.
//
// The store (Store, Set) fetches weight sets such as Paddle's
// tsm_kinetics.tar.gz into $ZOO_WEIGHTS_DIR or ~/.paddle/weights, resumes
// interrupted downloads, checks sha256, extracts archives safely and
// installs them atomically under a file lock.
//
// weights imports only the standard library and internal/pickle (itself
// stdlib-only): the host (CLI), nn/ and the plugins import it, and it must
// never pull gorgonia into the host.
package weights
