package serve

import (
	"context"
	"iter"
	"runtime"
	"time"

	"github.com/zoo-ml/zoo/sdk"
)

// Session is one opened model in a running plugin, as host/cmd/serve
// wraps an sdk.RemoteSession and its client.
type Session interface {
	Infer(ctx context.Context, in sdk.Tensor) (sdk.Tensor, error)
	Run(ctx context.Context, req sdk.RunRequest) iter.Seq2[sdk.Event, error]
	// Decode reads an upload with the plugin's infer reader; it may run
	// while Infer or Run does. sdk.ErrUnimplemented from a plugin older
	// than protocol minor 4.
	Decode(ctx context.Context, path string) (sdk.Decoded, error)
	// Exited reports whether the plugin process has died.
	Exited() bool
	// Close ends the session and stops the plugin.
	Close()
}

// Model is one served model and how to (re)start its session.
type Model struct {
	Name    string
	Version string
	Labels  []string
	// Input is one clip's shape ([seg_num, 3, H, W] for TSM); the v2
	// input "clip" is [N, Input...].
	Input []int64
	// MaxBatch is the most clips one plugin call takes: the graph's batch
	// (INFER.batch_size), so that a batch is one forward pass.
	MaxBatch int
	// VideoDir is the directory the session's infer reader lists
	// (INFER.video_path); "" when the model cannot classify videos.
	VideoDir string
	// Start opens a session; called at start and after the plugin died.
	Start func(ctx context.Context) (Session, sdk.OpenResult, error)
}

// Options tune the server.
type Options struct {
	// Window is how long a batch waits for more requests after its first.
	Window time.Duration
	// MaxBody bounds a request body; above it the answer is 413.
	MaxBody int64
	// Timeout bounds one request, queueing included; past it, 504.
	Timeout time.Duration
	// Queue is how many requests may wait per model; beyond it, 503.
	Queue int
	// Version is zoo's, for the server metadata.
	Version string
	// Decoders bounds the uploads one model decodes at once, while its
	// worker runs the batch before them.
	Decoders int
	// NoDecode sends uploads to infer passes even when the plugin has
	// Decode (the path of older plugins; for comparisons).
	NoDecode bool
}

// Defaults for Options' zero fields.
const (
	DefaultWindow  = 5 * time.Millisecond
	DefaultMaxBody = 64 << 20 // a minute of 1080p H.264 is about 30 MB
	DefaultTimeout = 60 * time.Second
	DefaultQueue   = 256
)

// DefaultDecoders is one decode per core: ffmpeg and the reader's
// transforms keep a core busy each, and more would only take cores from
// the forward pass they are meant to overlap.
var DefaultDecoders = runtime.NumCPU()
