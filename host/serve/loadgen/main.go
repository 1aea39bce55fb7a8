// Command loadgen is a bounded load generator for `zoo serve` on the same
// machine: it sends a fixed number of requests at each concurrency and
// prints throughput and latency percentiles. It talks to loopback
// addresses only, so it cannot be pointed at someone else's server.
//
//	go run ./host/serve/loadgen -url http://127.0.0.1:8080 -model TSM -video clip.mp4 -n 16 -c 1,4,16
//
// Without -video it sends v2 infer requests of one clip of random values in
// the model's input shape (from GET /v2/models/MODEL).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "the server (a loopback address)")
	model := flag.String("model", "TSM", "the model")
	videoPath := flag.String("video", "", "send this video to classify (default: random tensors to infer)")
	n := flag.Int("n", 16, "requests per concurrency level")
	levels := flag.String("c", "1,4,16", "concurrency levels")
	flag.Parse()
	if err := run(*base, *model, *videoPath, *n, *levels); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(base, model, videoPath string, n int, levels string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("-url %s: %w", base, err)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil || len(ips) == 0 || !slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.IsLoopback() }) {
		return fmt.Errorf("-url %s: not a loopback address", base)
	}
	if n < 1 || n > 10000 {
		return fmt.Errorf("-n %d: want 1 to 10000", n)
	}
	var body []byte
	var path, ctype string
	if videoPath != "" {
		if body, err = os.ReadFile(videoPath); err != nil {
			return err
		}
		path, ctype = "/v2/models/"+model+"/classify", "video/mp4"
	} else {
		if body, err = randomInfer(base, model); err != nil {
			return err
		}
		path, ctype = "/v2/models/"+model+"/infer", "application/json"
	}
	fmt.Printf("%-11s %8s %7s %10s %9s %9s\n", "concurrency", "requests", "errors", "clips/s", "p50 s", "p99 s")
	for _, f := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > 256 {
			return fmt.Errorf("-c %s: want concurrency levels from 1 to 256", levels)
		}
		lat, errs, wall := load(base+path, ctype, body, n, c)
		slices.Sort(lat)
		fmt.Printf("%-11d %8d %7d %10.2f %9.2f %9.2f\n", c, n, errs, float64(n-errs)/wall.Seconds(), pct(lat, 0.5), pct(lat, 0.99))
	}
	return nil
}

// load sends n requests from c goroutines; it returns the latencies of
// the successful ones, the failures and the wall time.
func load(target, ctype string, body []byte, n, c int) ([]float64, int, time.Duration) {
	var mu sync.Mutex
	var lat []float64
	errs := 0
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for range next {
				t := time.Now()
				resp, err := http.Post(target, ctype, bytes.NewReader(body))
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if ok {
					lat = append(lat, time.Since(t).Seconds())
				} else {
					errs++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return lat, errs, time.Since(start)
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func randomInfer(base, model string) ([]byte, error) {
	resp, err := http.Get(base + "/v2/models/" + model)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var meta struct {
		Inputs []struct {
			Name  string  `json:"name"`
			Shape []int64 `json:"shape"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil || len(meta.Inputs) != 1 {
		return nil, fmt.Errorf("model %s metadata: %v (status %s)", model, err, resp.Status)
	}
	shape := append([]int64{1}, meta.Inputs[0].Shape[1:]...)
	size := int64(1)
	for _, d := range shape {
		size *= d
	}
	data := make([]float32, size)
	for i := range data {
		data[i] = rand.Float32()*2 - 1
	}
	return json.Marshal(map[string]any{"inputs": []map[string]any{{"name": meta.Inputs[0].Name, "shape": shape, "datatype": "FP32", "data": data}}})
}
