package weights

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// errIdle is the cause of an attempt cancelled for want of bytes.
var errIdle = errors.New("idle timeout")

// ErrTooLarge: an archive larger than the store's cap (MaxDownload), or a
// server sending more than the size it announced. Not retried; the partial
// download is removed.
var ErrTooLarge = errors.New("archive too large")

// httpError is a response with a status other than 200 or 206.
type httpError struct {
	status string
	code   int
}

func (e *httpError) Error() string { return "server answered " + e.status }

func (e *httpError) transient() bool {
	return e.code >= 500 || e.code == http.StatusRequestTimeout || e.code == http.StatusTooManyRequests
}

func (s *Store) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	ct := orDefault(s.ConnectTimeout, DefaultConnectTimeout)
	return &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: ct, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: ct,
		ForceAttemptHTTP2:   true,
	}}
}

// download fetches url into part, resuming what part already holds,
// retrying transient failures with exponential backoff.
func (s *Store) download(ctx context.Context, set Set, url, part string) error {
	client := s.client()
	attempts := orDefault(s.Attempts, DefaultAttempts)
	backoff := orDefault(s.Backoff, DefaultBackoff)
	var last error
	for a := 1; a <= attempts; a++ {
		if a > 1 {
			s.progress(ProgressEvent{Set: set.Name, Phase: PhaseRetry, Attempt: a - 1, Err: last})
			s.log().Warn("download failed, retrying", "set", set.Name, "url", url, "attempt", a-1, "err", last, "after", backoff)
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		err := s.attempt(ctx, client, set, url, part, a)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		last = err
		var he *httpError
		if errors.As(err, &he) && !he.transient() {
			return err
		}
		var pe *os.PathError
		if errors.As(err, &pe) || noSpace(err) || errors.Is(err, ErrTooLarge) { // the disk or the cap, not the network
			return err
		}
	}
	return fmt.Errorf("%d attempts, last: %w", attempts, last)
}

// attempt is one HTTP request. It appends to part when the server honours
// Range, and starts part over when it does not.
func (s *Store) attempt(ctx context.Context, client *http.Client, set Set, url, part string, n int) error {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return diskFull(err, part, "")
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}

	idle := orDefault(s.IdleTimeout, DefaultIdleTimeout)
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// One timer covers waiting for the headers and every gap in the body.
	timer := time.AfterFunc(idle, func() { cancel(fmt.Errorf("no data for %v: %w", idle, errIdle)) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, url, nil)
	if err != nil {
		return &httpError{status: err.Error(), code: 400} // a bad URL is not transient
	}
	req.Header.Set("User-Agent", "zoo-weights")
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := client.Do(req)
	if err != nil {
		return causeOr(actx, err)
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			// Not the range asked for: start over on the next attempt.
			f.Truncate(0)
			return fmt.Errorf("server sent range %q for bytes=%d-", resp.Header.Get("Content-Range"), have)
		}
		total = size
	case resp.StatusCode == http.StatusOK:
		if have > 0 {
			s.log().Info("server ignored Range, starting over", "set", set.Name, "had", have)
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		have = 0
		if resp.ContentLength >= 0 {
			total = resp.ContentLength
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// part is as long as, or longer than, the file: start over.
		f.Truncate(0)
		return fmt.Errorf("server refused range bytes=%d-", have)
	default:
		return &httpError{status: resp.Status, code: resp.StatusCode}
	}
	timer.Reset(idle)
	// The cap: the size the server announced, else the store's maximum,
	// and never more than the maximum.
	maxBytes := orDefault(s.MaxDownload, DefaultMaxDownload)
	limit := maxBytes
	if total > maxBytes {
		return fmt.Errorf("the archive is %d bytes, above the limit of %d (raise it with %s): %w", total, maxBytes, MaxBytesEnv, ErrTooLarge)
	}
	if total >= 0 {
		limit = total
	}

	start := time.Now()
	done, base := have, have
	lastEvent := time.Time{}
	emit := func(force bool) {
		if s.Progress == nil || (!force && time.Since(lastEvent) < 100*time.Millisecond) {
			return
		}
		lastEvent = time.Now()
		rate := float64(done-base) / max(time.Since(start).Seconds(), 1e-3)
		s.progress(ProgressEvent{Set: set.Name, Phase: PhaseDownload, Done: done, Total: total, Rate: rate, Attempt: n})
	}
	emit(true)
	buf := make([]byte, 256<<10)
	w := fileWriter(f)
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			timer.Reset(idle)
			if done+int64(k) > limit {
				if total >= 0 {
					return fmt.Errorf("the server sent more than the %d bytes it announced: %w", total, ErrTooLarge)
				}
				return fmt.Errorf("the archive is larger than the limit of %d bytes (the server did not say its size; raise the limit with %s): %w", maxBytes, MaxBytesEnv, ErrTooLarge)
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return diskFull(err, part, "")
			}
			done += int64(k)
			emit(false)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			emit(true)
			return causeOr(actx, rerr)
		}
	}
	emit(true)
	if total >= 0 && done != total {
		return fmt.Errorf("got %d of %d bytes", done, total)
	}
	if err := f.Sync(); err != nil {
		return diskFull(err, part, "")
	}
	return diskFull(f.Close(), part, "")
}

// causeOr prefers the idle timeout's message to the "context canceled"
// the transport reports.
func causeOr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && errors.Is(c, errIdle) {
		return c
	}
	return err
}

// parseContentRange parses "bytes START-END/SIZE" (SIZE may be "*").
func parseContentRange(v string) (start, size int64, ok bool) {
	v, ok = strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, sz, ok := strings.Cut(v, "/")
	if !ok {
		return 0, 0, false
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, size, true
}
