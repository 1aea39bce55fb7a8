#!/usr/bin/env bash
# gpu-check.sh: on a bare GPU machine, build zoo's CUDA build and check it.
#
#   1. finds Go (or unpacks .gotoolchain/go.tar.gz, made by
#      scripts/pack-gotoolchain.sh, with .gotoolchain/vendor.tar.gz's modules:
#      the device machine has no network), the CUDA headers and libraries
#      (a toolkit under /usr/local/cuda*, /usr/include, or the nvidia-* pip
#      wheels PyTorch brings) and a C compiler for cgo;
#   2. builds zoo-gpucheck and the nn/cuda test binary with -tags zoocuda;
#   3. runs the kernel twin tests (every GPU kernel against nn/ops);
#   4. compares nn/cuda's graph executor running nn/resnet's graphs with the
#      CPU build (the same graphs on gorgonia's tape machine): eval logits
#      and one training step's parameter update, small TSM and TSM-R50,
#      fp32, relative error at most 1e-3;
#   5. times TSM-R50 forward and training step at batch 8 and 32 clips
#      (x8 segments, 224x224), then PyTorch's equivalent (bench/torch_tsm.py)
#      on the same GPU;
#   6. writes everything under $OUT (default ./gpu-check-out): gpu-check.log,
#      twins.log, zoo-check.json, zoo-bench.json, torch-bench.json and
#      summary.json with the zoo/PyTorch ratios.
#
# Every step has its own time limit, cut to what is left of
# GPU_CHECK_SECONDS (default 450) so the whole run stays under 8 minutes
# (docs/gpu.md has the device-tool command). CHECKS (default small,tsm-r50)
# and BATCHES (default 8,32) narrow a rerun. Exit status: 0 when the build,
# the twins and the numerics pass.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
t0=$(date +%s)
step() { echo; echo "== [$(($(date +%s) - t0))s] $*"; }
budget=${GPU_CHECK_SECONDS:-450}
lim() { # a step's limit: $1 seconds, or what is left of the budget
	local left=$((budget - ($(date +%s) - t0)))
	[ "$left" -lt 10 ] && left=10
	[ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
CHECKS=${CHECKS-small,tsm-r50}
BATCHES=${BATCHES-8,32}
fail=0

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
nproc

step "Go"
need=$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)
if ! command -v go >/dev/null || [ "$(printf '%s\n' "$need" "$(go env GOVERSION | sed 's/^go//')" | sort -V | head -1)" != "$need" ]; then
	if [ ! -f .gotoolchain/go.tar.gz ]; then
		echo "no Go >= $need here and no .gotoolchain/go.tar.gz: run scripts/pack-gotoolchain.sh and carry .gotoolchain"
		exit 2
	fi
	rm -rf /tmp/zoo-go && mkdir -p /tmp/zoo-go && tar -C /tmp/zoo-go -xzf .gotoolchain/go.tar.gz
	export GOROOT=/tmp/zoo-go/go PATH=/tmp/zoo-go/go/bin:$PATH
fi
export GOTOOLCHAIN=local GOCACHE=${GOCACHE:-/tmp/zoo-gocache} GOPATH=${GOPATH:-/tmp/zoo-gopath}
if [ -f .gotoolchain/vendor.tar.gz ]; then
	rm -rf vendor && tar -xzf .gotoolchain/vendor.tar.gz
	trap 'rm -rf vendor' EXIT # a vendor/ left behind would change every later go command here
	export GOFLAGS=-mod=vendor GOPROXY=off
fi
go version || exit 2

step "CUDA headers and libraries"
command -v gcc >/dev/null || command -v cc >/dev/null || { echo "no C compiler for cgo (gcc)"; exit 2; }
roots=()
[ -n "${CUDA_HOME:-}" ] && roots+=("$CUDA_HOME")
for d in /usr/local/cuda /usr/local/cuda-* /opt/cuda /usr; do [ -d "$d" ] && roots+=("$d"); done
for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
	[ -d "$sp/nvidia" ] && roots+=("$sp/nvidia")
done
# Candidate include and library folders: toolkits keep them in include/
# and lib64/ (or targets/x86_64-linux/), the pip wheels in
# nvidia/<part>/include and lib (CUDA 13 wheels: nvidia/cu13/...).
incs=() libs=()
for r in "${roots[@]}"; do
	for d in "$r/include" "$r/targets/x86_64-linux/include" "$r"/*/include; do [ -d "$d" ] && incs+=("$d"); done
	for d in "$r/lib64" "$r/targets/x86_64-linux/lib" "$r/lib/x86_64-linux-gnu" "$r/lib" "$r"/*/lib "$r"/*/lib64; do [ -d "$d" ] && libs+=("$d"); done
done
findin() { # pattern, then folders: the first match
	local n=$1; shift
	for d in "$@"; do
		for f in "$d"/$n; do [ -e "$f" ] && { echo "$f"; return 0; }; done
	done
	return 1
}
cflags="" ; libdirs=""
for h in cuda.h cublas_v2.h nvrtc.h; do
	f=$(findin "$h" "${incs[@]}") || { echo "no $h in ${incs[*]}"; exit 2; }
	echo "$h: $f"
	# the compiler searches /usr/include anyway; -I/usr/include would
	# reorder the system headers
	[ "$(dirname "$f")" = /usr/include ] || cflags="$cflags -I$(dirname "$f")"
done
link=/tmp/zoo-cudalink; rm -rf $link; mkdir -p $link
libcuda=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 .*x86-64/ {print $NF; exit}')
[ -z "$libcuda" ] && libcuda=$(findin 'libcuda.so.1' /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib)
[ -z "$libcuda" ] && { echo "no libcuda.so.1 (the driver)"; exit 2; }
ln -s "$libcuda" $link/libcuda.so
for l in cublas nvrtc; do
	f=$(findin "lib$l.so" "${libs[@]}") || f=$(findin "lib$l.so.[0-9]*" "${libs[@]}") || { echo "no lib$l.so in ${libs[*]}"; exit 2; }
	echo "lib$l: $f"
	ln -s "$f" $link/lib$l.so
	libdirs="$libdirs:$(dirname "$(readlink -f "$f")"):$(dirname "$f")"
done
echo "libcuda: $libcuda"
grep -m1 '#define CUDA_VERSION' "$(findin cuda.h "${incs[@]}")"
export CGO_ENABLED=1 CGO_CFLAGS="$cflags" CGO_LDFLAGS="-L$link -Wl,-rpath,$link"
export LD_LIBRARY_PATH="$link${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

step "build (tags zoocuda)"
mkdir -p bin
timeout $(lim 240) go build -tags zoocuda -o bin/zoo-gpucheck ./nn/cuda/cmd/zoo-gpucheck || { echo "build failed"; exit 1; }
timeout $(lim 120) go test -tags zoocuda -c -o bin/nn-cuda.test ./nn/cuda || { echo "test build failed"; exit 1; }

step "kernel twins (nn/cuda tests)"
ZOO_REQUIRE_GPU=1 timeout $(lim 60) bin/nn-cuda.test -test.v -test.count=1 -test.run 'Twins/gpu' 2>&1 | tee "$OUT/twins.log" | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|error' | grep -v '=== RUN'
[ "${PIPESTATUS[0]}" = 0 ] || { echo "twins FAILED"; fail=1; }

step "numerics: GPU vs CPU build ($CHECKS)"
timeout $(lim 150) bin/zoo-gpucheck -check "$CHECKS" -bench "" -json "$OUT/zoo-check.json" || { echo "numerics FAILED"; fail=1; }

step "zoo timing: tsm-r50 batch $BATCHES"
timeout $(lim 120) bin/zoo-gpucheck -check "" -bench "$BATCHES" -iters 5 -json "$OUT/zoo-bench.json" || echo "zoo bench failed"

step "PyTorch timing: tsm-r50 batch $BATCHES"
timeout $(lim 120) python3 bench/torch_tsm.py --batch "$BATCHES" --iters 5 --json "$OUT/torch-bench.json" || echo "torch bench failed"

step "summary"
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(n):
    try:
        return json.load(open(os.path.join(out, n)))
    except Exception as e:
        return {"error": str(e)}
z, t, c = load("zoo-bench.json"), load("torch-bench.json"), load("zoo-check.json")
rows = []
tb = {r["batch"]: r for r in t.get("bench", [])}
for r in z.get("bench", []) or []:
    p = tb.get(r["batch"])
    row = {"batch": r["batch"], "zoo_forward_ms": r["forward_ms"], "zoo_train_ms": r["train_step_ms"]}
    if p:
        row.update(torch_forward_ms=p["forward_ms"], torch_train_ms=p["train_step_ms"],
                   forward_ratio=r["forward_ms"] / p["forward_ms"], train_ratio=r["train_step_ms"] / p["train_step_ms"])
    rows.append(row)
s = {"device": z.get("device") or t.get("device"), "torch": t.get("torch"), "checks": c.get("checks"), "numerics_pass": c.get("pass"), "timing": rows}
json.dump(s, open(os.path.join(out, "summary.json"), "w"), indent=2)
for ch in c.get("checks") or []:
    print(f"{ch['name']}: logits {ch['logits_rel_err']:.2e}, loss {ch['train_loss_rel_err']:.2e}, update {ch['update_rel_err']:.2e} ({ch['worst_param']}) pass={ch['pass']}")
for r in rows:
    print("batch %(batch)d: zoo fwd %(zoo_forward_ms).1f ms train %(zoo_train_ms).1f ms" % r +
          (" | torch fwd %(torch_forward_ms).1f ms train %(torch_train_ms).1f ms | ratio fwd %(forward_ratio).2f train %(train_ratio).2f" % r if "train_ratio" in r else ""))
PY
step "done (exit $fail)"
exit $fail
