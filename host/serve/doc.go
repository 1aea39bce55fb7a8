// Package serve is zoo's inference server (`zoo serve`): the Open
// Inference Protocol v2 over HTTP/JSON (health, readiness, model metadata,
// tensor infer), a video endpoint that runs a model's own infer-mode reader
// (classify), dynamic batching per model, Prometheus metrics, request logs
// and an embedded demo page.
//
// It knows models only through Model and Session: host/cmd/serve resolves
// configs and weights, starts the plugins and hands them over, so this
// package imports sdk (for its types) and nothing of gorgonia or the video
// reader.
package serve
