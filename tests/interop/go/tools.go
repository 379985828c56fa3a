//go:build tools

// Package tools pins the real modeld daemon into this module so build.sh can
// build it with `go build github.com/contenox/runtime/cmd/modeld` against the
// exact versions recorded in go.sum.
package tools

import _ "github.com/contenox/runtime/cmd/modeld"
