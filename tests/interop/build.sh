#!/usr/bin/env bash
# Builds the Go side of the interop tests into tests/interop/bin/ (gitignored):
#
#   bin/peer             our scripted peer (go/cmd/peer) on the real v0.36.0 packages
#   bin/gobench          the Go client benchmark (go/cmd/gobench) for bench/side_by_side.ts
#   bin/goclient         the real Go client's checklist (go/cmd/goclient), run against our TS test daemon
#                        and (with --model) against the llama.cpp daemon
#   bin/modeld-v0.36.0   the real daemon, github.com/contenox/runtime/cmd/modeld@v0.36.0
#
# and probes older daemon versions (INTEROP_OLD_VERSIONS, default v0.32.3): a
# version the module proxy serves is built as bin/modeld-<ver>; a version it
# refuses gets bin/<ver>.unavailable holding the exact go/proxy error, so the
# TS suite can report it instead of silently skipping.
#
# Needs only Go (>= 1.25) and the Go module proxy; no cgo, no git.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/bin"
mod="$here/go"
old_versions="${INTEROP_OLD_VERSIONS:-v0.32.3}"
runtime_mod="github.com/contenox/runtime"
modeld_pkg="$runtime_mod/cmd/modeld"

export CGO_ENABLED=0
# -buildvcs=false: git may be absent and VCS stamps are irrelevant here.
# -mod=readonly: go.mod/go.sum are committed; fail instead of rewriting them.
build_flags=(-buildvcs=false -mod=readonly -trimpath)

command -v go >/dev/null || { echo "build.sh: 'go' not found on PATH" >&2; exit 1; }
echo "build.sh: $(go version), GOPROXY=$(go env GOPROXY)"
mkdir -p "$bin"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# timed NAME CMD...: runs CMD, prints its duration, and on failure its output.
timed() {
	local name="$1"
	shift
	local start ms
	start=$(now_ms)
	if ! "$@" >"$tmp/out" 2>&1; then
		echo "build.sh: FAILED: $name" >&2
		sed 's/^/  /' "$tmp/out" >&2
		return 1
	fi
	ms=$(($(now_ms) - start))
	printf 'build.sh: %-44s %3d.%01ds\n' "$name" $((ms / 1000)) $((ms % 1000 / 100))
}

# now_ms: wall clock in milliseconds (bash >= 5 has EPOCHREALTIME).
now_ms() {
	if [[ -n "${EPOCHREALTIME:-}" ]]; then
		local t="${EPOCHREALTIME/[.,]/}"
		echo $((10#$t / 1000))
	else
		echo $(($(date +%s) * 1000))
	fi
}

cd "$mod"
timed "download modules (go.sum)" go mod download
timed "bin/peer" go build "${build_flags[@]}" -o "$bin/peer" ./cmd/peer
timed "bin/gobench" go build "${build_flags[@]}" -o "$bin/gobench" ./cmd/gobench
timed "bin/goclient" go build "${build_flags[@]}" -o "$bin/goclient" ./cmd/goclient
timed "bin/modeld-v0.36.0" go build "${build_flags[@]}" -o "$bin/modeld-v0.36.0" "$modeld_pkg"

# Older daemons need their own module (one module cannot require two versions
# of contenox/runtime). Ask the proxy first so a refusal is reported verbatim.
for ver in $old_versions; do
	rm -f "$bin/$ver.unavailable" "$bin/modeld-$ver"
	if ! (cd "$tmp" && go mod download "$runtime_mod@$ver") >"$tmp/err" 2>&1; then
		echo "build.sh: $runtime_mod@$ver is NOT available from the module proxy:" >&2
		sed 's/^/  /' "$tmp/err" >&2
		cp "$tmp/err" "$bin/$ver.unavailable"
		echo "build.sh: wrote bin/$ver.unavailable" >&2
		continue
	fi
	oldmod="$tmp/modeld-$ver"
	mkdir -p "$oldmod"
	(
		cd "$oldmod"
		go mod init "interop/modeld-$ver" >/dev/null 2>&1
		timed "resolve $modeld_pkg@$ver" go get "$modeld_pkg@$ver"
		timed "bin/modeld-$ver" go build -buildvcs=false -trimpath -o "$bin/modeld-$ver" "$modeld_pkg"
	) || { echo "build.sh: building modeld $ver failed (see above)" >&2; exit 1; }
done

echo "build.sh: done:"
ls -1 "$bin" | sed 's/^/  bin\//'
