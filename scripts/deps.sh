#!/usr/bin/env bash
# Checks what zoo needs from the system and, when run as root on Debian or
# Ubuntu, installs what is missing with apt-get. Otherwise it names each
# missing piece and the command that installs it, and exits 1.
set -euo pipefail

missing_pkgs=()
missing_text=()

need() { # need DESCRIPTION DEBIAN-PACKAGE TEST-COMMAND...
  local what=$1 pkg=$2
  shift 2
  if ! "$@" >/dev/null 2>&1; then
    missing_pkgs+=("$pkg")
    missing_text+=("$what (Debian package $pkg)")
  fi
}

need "Go 1.26 or later" golang-go sh -c 'command -v go && go version | grep -Eq "go1\.(2[6-9]|[3-9][0-9])"'
need "ffmpeg, to decode videos" ffmpeg command -v ffmpeg
need "OpenBLAS, for fast matrix products" libopenblas-dev sh -c 'ls /usr/lib/*/libopenblas.so* /usr/lib/libopenblas.so* 2>/dev/null | grep -q .'
need "oneDNN, for the CPU convolutions (build tag onednn)" libdnnl-dev sh -c 'test -f /usr/include/oneapi/dnnl/dnnl.h && ls /usr/lib/*/libdnnl.so /usr/lib/libdnnl.so 2>/dev/null | grep -q .'
need "a C compiler, for cgo" gcc command -v gcc
need "Open MPI's mpirun, for data-parallel runs and their tests" openmpi-bin command -v mpirun
need "Open MPI's headers and libmpi, for the mpi build tag" libopenmpi-dev pkg-config --exists ompi-c
need "pkg-config, for cgo to find Open MPI" pkg-config command -v pkg-config
# Debian's python3 (not a pyenv or venv one first on PATH) is where apt puts
# these; the Python plugin test looks there too.
need "python3 with gRPC, for the Python plugin test" python3-grpcio /usr/bin/python3 -c 'import grpc'
need "protobuf for python3, for the Python plugin test" python3-protobuf /usr/bin/python3 -c 'import google.protobuf'
need "chromium, for the zoo serve demo page test (headless)" chromium command -v chromium

if [ ${#missing_pkgs[@]} -eq 0 ]; then
  echo "deps: everything zoo needs is installed"
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${missing_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # Go from Debian is too old for zoo; only install it if there is no go at all.
  pkgs=()
  for p in "${missing_pkgs[@]}"; do
    if [ "$p" = golang-go ]; then
      command -v go >/dev/null 2>&1 && { echo "deps: $(go version) is older than Go 1.26: install Go 1.26 from go.dev/dl" >&2; exit 1; }
      echo "deps: Go is missing: install Go 1.26 or later (go.dev/dl); Debian's golang-go is too old" >&2
      exit 1
    fi
    pkgs+=("$p")
  done
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
  echo "deps: installed ${pkgs[*]}"
  exit 0
fi

echo "deps: zoo needs these, which are missing:" >&2
for t in "${missing_text[@]}"; do echo "  - $t" >&2; done
echo "install them with: sudo apt-get install ${missing_pkgs[*]}" >&2
exit 1
