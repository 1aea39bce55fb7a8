package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, in a registry of its own (so
// that tests and several servers in one process do not share counters).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	batch    *prometheus.HistogramVec
	queue    *prometheus.GaugeVec
	ready    *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	inflight prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoo_requests_total", Help: "HTTP requests by model, endpoint and status code.",
		}, []string{"model", "endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zoo_request_duration_seconds", Help: "Time from a request's arrival to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"model", "endpoint"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zoo_inference_batch_size", Help: "Clips per plugin call (one forward pass when it fits the graph's batch).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}, []string{"model"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zoo_queue_depth", Help: "Requests waiting for a model's next batch.",
		}, []string{"model"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zoo_model_ready", Help: "1 while the model's plugin is up, 0 while it restarts.",
		}, []string{"model"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoo_plugin_restarts_total", Help: "Plugins restarted after they died.",
		}, []string{"model"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zoo_requests_in_flight", Help: "Requests being answered (probes and /metrics not counted).",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.batch, m.queue, m.ready, m.restarts, m.inflight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
