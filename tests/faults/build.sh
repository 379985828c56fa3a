#!/usr/bin/env bash
# Builds the hostile h2c server of the fault suite (go/cmd/hostile) into
# tests/faults/bin/ (gitignored). Needs only Go (>= 1.25) and the module proxy.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH" >&2; exit 1; }
mkdir -p "$here/bin"
cd "$here/go"
CGO_ENABLED=0 go build -buildvcs=false -mod=readonly -trimpath -o "$here/bin/hostile" ./cmd/hostile
echo "faults/build.sh: built bin/hostile ($(go version | cut -d' ' -f3))"
