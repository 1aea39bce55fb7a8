# zoo: `make run` sets up and runs the main job, `make test` runs the tests.
GO      ?= go
BIN     ?= bin
# Every plugins/NAME with a cmd/zoo-plugin-NAME (plugins/internal holds shared code).
PLUGINS := $(notdir $(patsubst %/cmd,%,$(wildcard plugins/*/cmd)))
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOFILES := $(shell find . -name '*.go' -not -path './.git/*' 2>/dev/null)
# onednn runs the float32 convolutions on oneDNN (nn/internal/dnnl, Debian's
# libdnnl-dev; docs/performance.md); OpenBLAS's sgemm is what makes the
# other CPU kernels (and the convolutions without onednn) fast; mpi builds
# the plugins' Open MPI binding (dist/internal/mpi, for `mpirun -np N zoo
# run`; zoo itself never links MPI); `make deps` installs all three. TAGS=
# builds the pure-Go (gonum) fallback, one process only, as `go install` does.
TAGS    ?= openblas,mpi,onednn
GOFLAGS_TAGS := $(if $(TAGS),-tags $(TAGS))

.PHONY: all build link-zoo plugins deps test test-race run bench bench-go proto proto-python lint clean cuda cuda-check gotoolchain

all: build

## deps: check what zoo needs from the system; as root, install it with apt-get
deps:
	@scripts/deps.sh

## build: bin/zoo and every bin/zoo-plugin-NAME, the plugins' sha256 pinned into zoo
build: plugins
	@$(MAKE) --no-print-directory link-zoo

# link-zoo: bin/zoo with the sha256 of the bin/zoo-plugin-* there now pinned in.
link-zoo:
	@pins=$$(for p in $(PLUGINS); do printf 'zoo-plugin-%s=%s,' $$p $$(sha256sum $(BIN)/zoo-plugin-$$p | cut -d' ' -f1); done); \
	$(GO) build $(GOFLAGS_TAGS) -ldflags "-X github.com/zoo-ml/zoo/registry.bundledPins=$$pins -X github.com/zoo-ml/zoo/host/cmd/root.Version=$(VERSION)" -o $(BIN)/zoo ./cmd/zoo

plugins: $(addprefix $(BIN)/zoo-plugin-,$(PLUGINS))

$(BIN)/zoo-plugin-%: $(GOFILES) go.mod go.sum
	$(GO) build $(GOFLAGS_TAGS) -o $@ ./plugins/$*/cmd/zoo-plugin-$*

## test: every test (needs ffmpeg: run `make deps` first)
test: deps
	$(GO) test $(GOFLAGS_TAGS) -count=1 -timeout 60m ./...

## run: the main job, TSM training on its built-in dataset
run: deps build
	$(BIN)/zoo run TSM train

## bench: zoo's TSM against PyTorch's (python3-torch) in one run: s/clip, GFLOP/s, peak RSS
bench: $(BIN)/zoo-bench
	$(BIN)/zoo-bench $(BENCHFLAGS)

$(BIN)/zoo-bench: $(GOFILES) go.mod go.sum
	$(GO) build $(GOFLAGS_TAGS) -o $@ ./bench

## bench-go: the Go micro-benchmarks (go test -bench), a few iterations each
bench-go:
	$(GO) test $(GOFLAGS_TAGS) -run '^$$' -bench . -benchtime 3x ./...

## proto: regenerate sdk/internal/pb from sdk/proto and host/serve/inferencepb from host/serve/proto (protoc from Debian's protobuf-compiler)
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I sdk/proto \
		--go_out=sdk/internal/pb --go_opt=paths=source_relative \
		--go-grpc_out=sdk/internal/pb --go-grpc_opt=paths=source_relative \
		sdk/proto/zoo_plugin_v1.proto
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I host/serve/proto \
		--go_out=host/serve/inferencepb --go_opt=paths=source_relative \
		--go-grpc_out=host/serve/inferencepb --go-grpc_opt=paths=source_relative \
		host/serve/proto/grpc_predict_v2.proto

## proto-python: regenerate the Python plugin example's messages (Debian's protoc)
proto-python:
	protoc -I sdk/proto --python_out=examples/python-plugin sdk/proto/zoo_plugin_v1.proto

## lint: gofmt, go vet and staticcheck (pinned) over zoo and examples/zoo-plugin-echo
## (the zoocuda files: `make cuda-check` vets them)
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS_TAGS) ./...
	$(STATICCHECK) $(GOFLAGS_TAGS) ./...
	cd examples/zoo-plugin-echo && $(GO) vet ./... && $(STATICCHECK) ./...

## test-race: the packages with goroutines (plugin clients, the registry's
## parallel Describe, the video reader's workers, weights downloads) under
## the race detector (needs cgo and gcc); about 5 minutes on 2 cores
RACE_PKGS ?= ./host/... ./registry/... ./sdk/... ./video/... ./weights/...
test-race: deps
	$(GO) test -race $(GOFLAGS_TAGS) -count=1 -timeout 30m $(RACE_PKGS)

## cuda: the GPU build (docs/gpu.md): bin/zoo-plugin-tsm, bin/zoo-plugin-resnet
## and bin/zoo-gpucheck with -tags zoocuda (not "cuda": that tag turns
## gorgonia itself into its CUDA build, which needs cuDNN 8). Needs the CUDA
## headers and libcuda, libcublas, libnvrtc (Debian: nvidia-cuda-dev from
## non-free), no nvcc.
CUDA_TAGS ?= zoocuda,openblas
cuda:
	$(GO) build -tags $(CUDA_TAGS) -o $(BIN)/zoo-plugin-tsm ./plugins/tsm/cmd/zoo-plugin-tsm
	$(GO) build -tags $(CUDA_TAGS) -o $(BIN)/zoo-plugin-resnet ./plugins/resnet/cmd/zoo-plugin-resnet
	$(GO) build -tags $(CUDA_TAGS) -o $(BIN)/zoo-gpucheck ./nn/cuda/cmd/zoo-gpucheck
	@# zoo pins the plugins it was linked beside: re-link it with the GPU build's hash.
	@$(MAKE) --no-print-directory link-zoo

## cuda-check: what of the GPU build a machine without a GPU can check:
## vet and build every zoocuda package (cgo against the CUDA headers, linked
## against the libraries), then the tests: NVRTC compiles every kernel for
## compute_70, sm_80 and sm_90 (NVRTC needs no GPU); the kernel twins run
## on a CPU emulator of the kernels (the CUDA C compiled by cc, one thread
## after another) against nn/ops; nn/cuda's graph executor runs the graphs
## nn/resnet builds (TSM-R18 small, a narrow TSM-R50 training step, the
## ResNet plugin's graph) on the emulator against gorgonia's tape machine;
## nn/cuda depends on no model package; the TSM and ResNet plugins' GPU
## sessions (ZOO_CUDA_EMULATOR) train like their CPU ones, with micro-batches
## too, and `mpirun -np 2 zoo run TSM train --use_gpu` equals micro_batches 2
## (GPU ranks allreduce through host memory). It cannot run a kernel on a GPU:
## real CUDA semantics (races between blocks, memory limits), cuBLAS itself,
## CUDA 13's headers and the speed stay unchecked until
## scripts/gpu-check.sh runs on one. Needs the CUDA packages of `make cuda`
## (docs/gpu.md); CI does not run it.
CUDA_PKGS := ./nn/cuda/... ./nn/resnetgpu/ ./nn/resnet/ ./plugins/internal/classifier/ ./plugins/tsm/... ./plugins/resnet/...
cuda-check:
	$(GO) vet -tags zoocuda $(CUDA_PKGS)
	$(GO) build -tags zoocuda ./nn/... ./plugins/...
	$(GO) test -tags zoocuda -count=1 -timeout 15m ./nn/cuda/ ./nn/resnetgpu/
	$(GO) test -tags zoocuda -count=1 -timeout 15m -run GPUSession ./plugins/tsm/ ./plugins/resnet/
	$(GO) vet -tags openblas,mpi,zoocuda ./cmd/zoo/
	$(GO) test -tags openblas,mpi,zoocuda -count=1 -timeout 10m -run TestMPIGPU ./cmd/zoo/

## gotoolchain: .gotoolchain/ (trimmed Go + vendored modules, git-ignored)
## for scripts/gpu-check.sh on a device machine without Go or network
gotoolchain:
	scripts/pack-gotoolchain.sh

clean:
	rm -rf $(BIN)
