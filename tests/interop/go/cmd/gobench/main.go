// Command gobench is the Go half of bench/side_by_side.ts: it drives a running
// peer (or modeld) through the REAL v0.36.0 Go client,
// transportgrpc.DialLeader, with the same workloads the TypeScript client runs,
// and prints one JSON object on stdout.
//
// Usage:
//
//	gobench --endpoint HOST:PORT --instance ID [--rounds 1] [--health 500]
//	        [--turns 100] [--decodes 5] [--prefixes 50] [--pushes 3]
//	gobench --vmhwm PID
//
// The second form prints {"pid":PID,"vmhwm_kb":N,"vmrss_kb":N} from
// /proc/PID/status: bench/side_by_side.ts reads the TypeScript child's peak RSS
// through it, because Deno refuses /proc reads without --allow-all.
//
// Workloads (one "round" runs each once, after an untimed warm-up):
//
//	health     N Health round trips; mean µs per call.
//	turn       N x (OpenSession, EnsurePrefix (warm after the first: the slot
//	           keeps the resident session), PrefillSuffix, Decode MaxTokens 32,
//	           CloseSession); mean µs per turn.
//	decode     N x Decode MaxTokens 512 on one open session; chunks per second.
//	prefix64k  N x EnsurePrefix with a 64 KiB non-ASCII prefix; mean µs per call.
//	push16m    N x PushModel of 16 MiB (same name and bytes, digest given, so
//	           after the untimed first push the node verifies and discards);
//	           MiB per second.
//
// The peer must serve the slot service (peer --mode slot): PushModel needs it,
// and it is what modeld serves. The slot is unloaded first so a model the other
// client left loaded does not refuse our OpenSession.
//
// Memory, read at the end: rss_hwm_kb is VmHWM from /proc/self/status (the
// peak RSS of this process image), go_sys_bytes is runtime.MemStats.Sys, and
// maxrss_kb is getrusage ru_maxrss, which Linux carries over from the process
// that spawned us (so it is at least the spawner's RSS): informational only.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/contenox/runtime/runtime/transport"
	transportgrpc "github.com/contenox/runtime/runtime/transport/grpc"
)

// The workload constants; bench/side_by_side.ts uses the same ones.
const (
	modelName    = "bench-model"
	modelType    = "llama"
	modelPath    = "/bench/model.gguf"
	turnPrefix   = "You are a benchmark. Answer in one word."
	turnSuffix   = "What is 2+2?"
	turnTokens   = 32
	decodeTokens = 512
	prefixUnit   = "Grüße, 世界! Ünïcödé ✓ 🙂 "
	prefixBytes  = 64 * 1024
	pushBytes    = 16 * 1024 * 1024
	pushName     = "bench-push"
)

type result struct {
	Client     string               `json:"client"`
	GoVersion  string               `json:"go_version"`
	Rounds     map[string][]float64 `json:"rounds"`
	Units      map[string]string    `json:"units"`
	RSSHWMKB   int64                `json:"rss_hwm_kb"`
	MaxRSSKB   int64                `json:"maxrss_kb"`
	GoSysBytes uint64               `json:"go_sys_bytes"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
}

func run() error {
	endpoint := flag.String("endpoint", "", "peer host:port (required)")
	instance := flag.String("instance", "", "lease instance id (required)")
	rounds := flag.Int("rounds", 1, "timed rounds")
	nHealth := flag.Int("health", 500, "Health calls per round")
	nTurns := flag.Int("turns", 100, "session turns per round")
	nDecodes := flag.Int("decodes", 5, "512-token decodes per round")
	nPrefixes := flag.Int("prefixes", 50, "64 KiB EnsurePrefix calls per round")
	nPushes := flag.Int("pushes", 3, "16 MiB pushes per round")
	skipPush := flag.Bool("skip-push", false, "leave out push16m, warm-up included (to see the peak RSS without it)")
	hwmPID := flag.Int("vmhwm", 0, "only print VmHWM/VmRSS of this pid")
	flag.Parse()
	if *hwmPID > 0 {
		hwm, rss := procStatus(fmt.Sprintf("/proc/%d/status", *hwmPID))
		return json.NewEncoder(os.Stdout).Encode(map[string]int64{
			"pid": int64(*hwmPID), "vmhwm_kb": hwm, "vmrss_kb": rss,
		})
	}
	if *endpoint == "" || *instance == "" {
		return fmt.Errorf("--endpoint and --instance are required")
	}

	c, err := transportgrpc.DialLeader(*endpoint, *instance)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Health(ctx); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	if err := c.UnloadModel(ctx, transport.UnloadModelRequest{}); err != nil {
		return fmt.Errorf("unload: %w", err)
	}

	w := &workloads{c: c, prefix: nonASCIIPrefix()}
	if !*skipPush {
		w.push = pushPayload()
		sum := sha256.Sum256(w.push)
		w.manifest = transport.PushManifest{
			Name: pushName, Type: modelType, Digest: hex.EncodeToString(sum[:]),
			TotalBytes: int64(len(w.push)), Format: transport.PushFormatFile,
		}
	}
	// Untimed warm-up: connection, slot load, first push (later ones are "already present").
	if err := w.warmUp(ctx); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	res := result{
		Client:    "go",
		GoVersion: runtime.Version(),
		Rounds:    map[string][]float64{},
		Units: map[string]string{
			"health": "us/call", "turn": "us/turn", "decode": "tokens/s",
			"prefix64k": "us/call", "push16m": "MiB/s",
		},
	}
	for r := 0; r < *rounds; r++ {
		v, err := w.health(ctx, *nHealth)
		if err != nil {
			return fmt.Errorf("health: %w", err)
		}
		res.Rounds["health"] = append(res.Rounds["health"], v)
		if v, err = w.turns(ctx, *nTurns); err != nil {
			return fmt.Errorf("turn: %w", err)
		}
		res.Rounds["turn"] = append(res.Rounds["turn"], v)
		if v, err = w.decode(ctx, *nDecodes); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		res.Rounds["decode"] = append(res.Rounds["decode"], v)
		if v, err = w.prefix64k(ctx, *nPrefixes); err != nil {
			return fmt.Errorf("prefix64k: %w", err)
		}
		res.Rounds["prefix64k"] = append(res.Rounds["prefix64k"], v)
		if w.push == nil {
			continue
		}
		if v, err = w.pushes(ctx, *nPushes); err != nil {
			return fmt.Errorf("push16m: %w", err)
		}
		res.Rounds["push16m"] = append(res.Rounds["push16m"], v)
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.GoSysBytes = ms.Sys
	res.RSSHWMKB, _ = procStatus("/proc/self/status")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.MaxRSSKB = ru.Maxrss // KiB on Linux
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

type workloads struct {
	c        *transportgrpc.Client
	prefix   string
	push     []byte
	manifest transport.PushManifest
}

func openReq() transport.OpenSessionRequest {
	return transport.OpenSessionRequest{ModelName: modelName, Type: modelType, Path: modelPath}
}

func (w *workloads) warmUp(ctx context.Context) error {
	if _, err := w.health(ctx, 20); err != nil {
		return err
	}
	if _, err := w.turns(ctx, 5); err != nil {
		return err
	}
	if _, err := w.decode(ctx, 1); err != nil {
		return err
	}
	if _, err := w.prefix64k(ctx, 2); err != nil {
		return err
	}
	if w.push == nil {
		return nil
	}
	_, err := w.pushes(ctx, 1)
	return err
}

func (w *workloads) health(ctx context.Context, n int) (float64, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := w.c.Health(ctx); err != nil {
			return 0, err
		}
	}
	return micros(time.Since(start)) / float64(n), nil
}

func (w *workloads) turns(ctx context.Context, n int) (float64, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		s, err := w.c.OpenSession(ctx, openReq())
		if err != nil {
			return 0, err
		}
		if _, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: turnPrefix}); err != nil {
			return 0, err
		}
		if _, err := s.PrefillSuffix(ctx, transport.SuffixInput{Text: turnSuffix}); err != nil {
			return 0, err
		}
		got, err := drain(ctx, s, turnTokens)
		if err != nil {
			return 0, err
		}
		if got != turnTokens {
			return 0, fmt.Errorf("turn decoded %d chunks, want %d", got, turnTokens)
		}
		if err := s.Close(); err != nil {
			return 0, err
		}
	}
	return micros(time.Since(start)) / float64(n), nil
}

func (w *workloads) decode(ctx context.Context, n int) (float64, error) {
	s, err := w.c.OpenSession(ctx, openReq())
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if _, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: turnPrefix}); err != nil {
		return 0, err
	}
	total := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		got, err := drain(ctx, s, decodeTokens)
		if err != nil {
			return 0, err
		}
		total += got
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

func (w *workloads) prefix64k(ctx context.Context, n int) (float64, error) {
	s, err := w.c.OpenSession(ctx, openReq())
	if err != nil {
		return 0, err
	}
	defer s.Close()
	start := time.Now()
	for i := 0; i < n; i++ {
		st, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: w.prefix})
		if err != nil {
			return 0, err
		}
		if st.PrefixTokens == 0 {
			return 0, fmt.Errorf("EnsurePrefix reported no prefix tokens")
		}
	}
	return micros(time.Since(start)) / float64(n), nil
}

func (w *workloads) pushes(ctx context.Context, n int) (float64, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := w.c.PushModel(ctx, w.manifest, bytes.NewReader(w.push)); err != nil {
			return 0, err
		}
	}
	mib := float64(n*len(w.push)) / (1 << 20)
	return mib / time.Since(start).Seconds(), nil
}

func drain(ctx context.Context, s transport.Session, maxTokens int) (int, error) {
	ch, err := s.Decode(ctx, transport.DecodeConfig{MaxTokens: maxTokens})
	if err != nil {
		return 0, err
	}
	got := 0
	for chunk := range ch {
		if chunk.Error != nil {
			return got, chunk.Error
		}
		got++
	}
	return got, nil
}

// nonASCIIPrefix repeats prefixUnit as often as it fits in prefixBytes of UTF-8.
func nonASCIIPrefix() string {
	return strings.Repeat(prefixUnit, prefixBytes/len(prefixUnit))
}

// pushPayload is pushBytes of a fixed pseudo-random pattern (xorshift32, seed 1).
func pushPayload() []byte {
	b := make([]byte, pushBytes)
	x := uint32(1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// procStatus reads VmHWM and VmRSS (KiB) from a /proc/<pid>/status file (0s off Linux).
func procStatus(path string) (hwm, rss int64) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	field := func(line, name string) (int64, bool) {
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			return 0, false
		}
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		return kb, true
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := field(line, "VmHWM"); ok {
			hwm = v
		} else if v, ok := field(line, "VmRSS"); ok {
			rss = v
		}
	}
	return hwm, rss
}
