package serve

import (
	"context"
	"net/http"
	"slices"

	"github.com/zoo-ml/zoo/sdk"
)

// decode reads an upload with the plugin's Decode (its infer reader,
// without the model), at most Options.Decoders at a time per model, while
// the worker runs the batches before it: the decoding of the next batch
// overlaps the forward pass of this one. ok is false when the plugin has
// no Decode (older than protocol minor 4): the upload then goes to an
// infer pass, as before.
func (w *worker) decode(ctx context.Context, file string) (d sdk.Decoded, ok bool, err error) {
	if w.noDecode.Load() {
		return d, false, nil
	}
	select {
	case w.decoders <- struct{}{}:
		defer func() { <-w.decoders }()
	case <-ctx.Done():
		return d, true, w.errTimeout()
	}
	sess := w.current()
	if sess == nil || !w.ready.Load() {
		return d, true, w.errRestarting()
	}
	d, err = sess.Decode(ctx, file)
	switch {
	case err == nil:
	case sdk.CodeOf(err) == sdk.CodeUnimplemented:
		if !w.noDecode.Swap(true) {
			w.log.Info("the plugin has no Decode (protocol minor < 4): uploads are read by infer passes, not decoded while the previous batch runs")
		}
		return d, false, nil
	case sdk.CodeOf(err) == sdk.CodeInvalidArgument:
		return d, true, w.errUnreadable(err.Error(), file)
	case ctx.Err() != nil:
		return d, true, w.errTimeout()
	case sess.Exited():
		// The worker notices within its tick and restarts the plugin.
		return d, true, w.errDied(err)
	default:
		return d, true, pluginError(w.Name, err)
	}
	if s := d.Input.Shape; len(s) != len(w.Input)+1 || s[0] < 1 || !slices.Equal(s[1:], w.Input) {
		return d, true, errorf(http.StatusInternalServerError, "model %s decoded the upload into shape %v, want [views, %v]", w.Name, s, w.Input)
	}
	return d, true, nil
}
