#!/usr/bin/env bash
# Installs the pinned toolchain from npm into .tools/: Deno 2.9.3, buf and
# protoc-gen-es. Deno is pinned because 2.9.4-2.9.6 crash (SIGSEGV) when a
# grpc-go server sends GOAWAY to an idle HTTP/2 client (denoland/deno#36788).
set -euo pipefail
cd "$(dirname "$0")/.."
# `npm install` with the committed lock, not `npm ci`: npm 11 writes a lock without the other
# platforms' optional @deno/* packages and then refuses it in `npm ci`. Versions stay pinned.
npm install --prefix .tools --no-audit --no-fund --loglevel=error
# The project's own npm packages (nodeModulesDir: manual): the client's protobuf/Connect and the
# llama.cpp engine, node-llama-cpp 3.21.1 with only its prebuilt linux-x64 CPU binary
# (--omit=optional skips the CUDA/Vulkan builds; npm 11 does not run the engine's postinstall,
# so nothing is built or downloaded at install or run time). About 15 s, 91 MB of node_modules.
npm install --omit=optional --no-audit --no-fund --loglevel=error
./.tools/node_modules/.bin/deno --version | head -1
