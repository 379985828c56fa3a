#!/usr/bin/env bash
# `deno task serve [--data-root DIR] [--threads N] [--idle-ttl D]`: runs the llama.cpp daemon
# in the foreground with permissions scoped to the data root (default ~/.contenox):
# read/write on it, read on node_modules (the engine), /usr (its platform probe) and
# .cache/models (what `deno task model` fetched; MODELD_READ=dir1,dir2 adds model directories),
# net on 127.0.0.1, ffi on node_modules, env and sys (node-llama-cpp reads both), and run
# on the Deno binary itself (node-llama-cpp forks it once to test the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${CONTENOX_DATA_ROOT:-$HOME/.contenox}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --data-root) root="${args[$((i + 1))]:-}" ;;
    --data-root=*) root="${args[$i]#--data-root=}" ;;
  esac
done
mkdir -p "$root"
root="$(cd "$root" && pwd)"
deno_bin="$(command -v deno)"
deno_bin="$(readlink -f "$deno_bin")"
exec "$deno_bin" run --allow-read="$root,node_modules,/usr,$PWD/.cache/models${MODELD_READ:+,$MODELD_READ}" \
  --allow-write="$root" --allow-net=127.0.0.1 --allow-ffi=node_modules --allow-env --allow-sys \
  --allow-run="$deno_bin" cli.ts serve --data-root "$root" "${args[@]}"
