# zoo: `make run` sets up and runs the main job, `make test` runs the tests.
GO      ?= go
BIN     ?= bin
PLUGINS := $(notdir $(wildcard plugins/*))
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOFILES := $(shell find . -name '*.go' -not -path './.git/*' 2>/dev/null)
# OpenBLAS's sgemm is what makes the CPU kernels fast; `make deps` installs
# it. TAGS= builds the pure-Go (gonum) fallback, as `go install` does.
TAGS    ?= openblas
GOFLAGS_TAGS := $(if $(TAGS),-tags $(TAGS))

.PHONY: all build plugins deps test run bench bench-go proto lint clean

all: build

## deps: check what zoo needs from the system; as root, install it with apt-get
deps:
	@scripts/deps.sh

## build: bin/zoo and every bin/zoo-plugin-NAME, the plugins' sha256 pinned into zoo
build: plugins
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

## proto: regenerate sdk/internal/pb from sdk/proto (protoc from Debian's protobuf-compiler)
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I sdk/proto \
		--go_out=sdk/internal/pb --go_opt=paths=source_relative \
		--go-grpc_out=sdk/internal/pb --go-grpc_opt=paths=source_relative \
		sdk/proto/zoo_plugin_v1.proto

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS_TAGS) ./...

clean:
	rm -rf $(BIN)
