#!/usr/bin/env bash
# pack-gotoolchain.sh: make .gotoolchain/, what scripts/gpu-check.sh needs
# on a device machine that has no Go and no network:
#   .gotoolchain/go.tar.gz      this machine's Go ($(go env GOROOT)), trimmed
#                               to what building needs (about 35 MB)
#   .gotoolchain/vendor.tar.gz  `go mod vendor` of this module (about 9 MB)
# .gotoolchain/ is git-ignored: pass it to the device tool with
# carry [".gotoolchain"] (docs/gpu.md). Its limit is 64 MiB for everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(go env GOROOT)
ver=$(go env GOVERSION)
out=.gotoolchain
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$tmp/go/pkg/tool/linux_amd64" "$tmp/go/bin"
# The go command, the tools a cgo build and go vet run, the standard
# library's source (built into the cache on first use), cgo's headers.
cp "$root/bin/go" "$tmp/go/bin/"
for t in asm cgo compile link vet buildid; do
	[ -f "$root/pkg/tool/linux_amd64/$t" ] && cp "$root/pkg/tool/linux_amd64/$t" "$tmp/go/pkg/tool/linux_amd64/"
done
cp -r "$root/pkg/include" "$tmp/go/pkg/"
cp "$root/VERSION" "$root/go.env" "$tmp/go/"
mkdir -p "$tmp/go/lib" && cp -r "$root/lib/time" "$tmp/go/lib/" 2>/dev/null || true
(cd "$root" && tar cf - --exclude='src/cmd' --exclude='testdata' --exclude='*_test.go' src) | tar -C "$tmp/go" -xf -
tar -C "$tmp" -czf "$out/go.tar.gz" go
go mod vendor -o "$tmp/vendor"
tar -C "$tmp" -czf "$out/vendor.tar.gz" vendor
echo "$ver" > "$out/VERSION"
du -h "$out"/*.tar.gz
total=$(du -cb "$out"/*.tar.gz | tail -1 | cut -f1)
if [ "$total" -gt $((60 << 20)) ]; then
	echo "pack-gotoolchain: $total bytes, over the device tool's 64 MiB carry limit with the source" >&2
	exit 1
fi
