package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/contenox/runtime/runtime/transport"
)

// generateFile is --gen-file: size bytes of xorshift32 output (seed 1, four
// bytes a step), written in 1 MiB pieces; incompressible, and fast to make.
// It refuses when the file system lacks room for the file, the peer's copy of
// it and 512 MiB to spare.
func generateFile(path string, size int64) error {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil {
		return err
	}
	if free, need := int64(fs.Bavail)*fs.Bsize, 2*size+512<<20; free < need {
		return fmt.Errorf("%s: %d MiB free, the push curve needs %d MiB", filepath.Dir(path), free>>20, need>>20)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	x := uint32(1)
	for left := size; left > 0; {
		for i := 0; i+4 <= len(buf); i += 4 {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			binary.LittleEndian.PutUint32(buf[i:], x)
		}
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := f.Write(buf[:n]); err != nil {
			_ = f.Close()
			return err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"path": path, "bytes": size})
}

// pushFile is --push-file: one point of the push memory curve. Connects, reads
// VmRSS after the first Health call (post-start), hashes the file and pushes
// it as a user of the Go client would (digest first, then PushModel from the
// open file), removes the model again, and reports VmHWM (the peak).
func pushFile(endpoint, instance, path, name string) error {
	c, err := dialHealthy(endpoint, instance)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	postHWM, postRSS := procStatus("/proc/self/status")
	cpuStart := cpuNow()
	start := time.Now()

	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	res, err := c.PushModel(ctx, transport.PushManifest{
		Name: name, Type: modelType, Digest: hex.EncodeToString(h.Sum(nil)),
		TotalBytes: size, Format: transport.PushFormatFile,
	}, f)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	seconds := time.Since(start).Seconds()
	cpu := cpuNow().sub(cpuStart)
	if err := c.RemoveModel(ctx, name); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	hwm, rss := procStatus("/proc/self/status")
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"post_start_rss_kb": postRSS, "post_start_hwm_kb": postHWM, "peak_hwm_kb": hwm,
		"end_rss_kb": rss, "bytes": size, "seconds": seconds, "cpu_us": cpu,
		"already_present": res.AlreadyPresent, "bytes_written": res.BytesWritten,
	})
}

// series is --series N: RSS at 0, 10, 25, 50, 75 and 100% of N Health calls
// (and the Go heap) after a forced GC; the Go counterpart of the TypeScript
// series (SERIES_POINTS in bench/side_by_side_children.ts).
func series(endpoint, instance string, calls int) error {
	c, err := dialHealthy(endpoint, instance)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	type point struct {
		Calls      int    `json:"calls"`
		RSSKB      int64  `json:"rss_kb"`
		HeapBytes  uint64 `json:"heap_bytes"`
		HWMKB      int64  `json:"hwm_kb"`
		Goroutines int    `json:"goroutines"`
	}
	sample := func(n int) point {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		hwm, rss := procStatus("/proc/self/status")
		return point{Calls: n, RSSKB: rss, HeapBytes: ms.HeapAlloc, HWMKB: hwm, Goroutines: runtime.NumGoroutine()}
	}
	var points []point
	done := 0
	for _, f := range []float64{0, 0.1, 0.25, 0.5, 0.75, 1} {
		at := int(f * float64(calls))
		for ; done < at; done++ {
			if _, err := c.Health(ctx); err != nil {
				return fmt.Errorf("health: %w", err)
			}
		}
		points = append(points, sample(done))
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"health": points})
}
