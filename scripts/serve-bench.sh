#!/bin/bash
# serve-bench.sh: zoo serve's throughput with Decode (the default) against
# the infer-pass path (--decoders 0), alternated twice, plus one request at
# a time (docs/serve.md, Load). Run on an idle machine from the repository
# root after `make build`:
#
#   CONFIG=r50.yaml WEIGHTS=checkpoints/TSM_epoch0 scripts/serve-bench.sh
#
# CONFIG and WEIGHTS are a TSM job and its checkpoint (docs/serve.md says
# which job the figures used); VIDEO defaults to the shared test clip.
set -eu
: "${CONFIG:?set CONFIG to a TSM config file}" "${WEIGHTS:?set WEIGHTS to a checkpoint directory}"
VIDEO=${VIDEO:-../shared/data/videos/test.mp4}
ADDR=127.0.0.1:18080
export ZOO_HOME=${ZOO_HOME:-$(mktemp -d)}
loadgen=$(mktemp)
trap 'rm -f "$loadgen"' EXIT
go build -o "$loadgen" ./host/serve/loadgen
run() { # name, concurrency levels, then zoo serve's flags
	local name=$1 levels=$2
	shift 2
	bin/zoo serve TSM --config "$CONFIG" --weights "$WEIGHTS" --addr $ADDR "$@" 2>/dev/null &
	local pid=$!
	for _ in $(seq 1 240); do curl -sf http://$ADDR/v2/health/ready >/dev/null && break; sleep 0.5; done
	echo "== $name ($*) load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%T)"
	"$loadgen" -url http://$ADDR -video "$VIDEO" -n 16 -c "$levels"
	curl -s http://$ADDR/metrics | grep '^zoo_inference_batch_size_\(count\|sum\)'
	kill -TERM $pid
	wait $pid
}
for r in 1 2; do
	run decode-r$r 4,8 --max-batch 4
	run infer-pass-r$r 4,8 --max-batch 4 --decoders 0
done
run one-at-a-time 1 --max-batch 1
echo "end load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%T)"
