// Command gobench is the Go half of bench/side_by_side.ts: it drives a running
// peer (or modeld) through the REAL v0.36.0 Go client,
// transportgrpc.DialLeader, with the same workloads the TypeScript client runs,
// and prints one JSON object on stdout.
//
// Usage:
//
//	gobench --endpoint HOST:PORT --instance ID [--rounds 1] [--health 500]
//	        [--warm-prefixes 500] [--turns 100] [--decodes 5] [--prefixes 50]
//	        [--pushes 3] [--skip-push]
//	gobench --vmhwm PID
//	gobench --version
//	gobench --spawn N -- CMD ARGS...
//	gobench --status DATA_ROOT
//	gobench --gen-file PATH --size BYTES
//	gobench --endpoint HOST:PORT --instance ID --push-file PATH --name NAME
//	gobench --endpoint HOST:PORT --instance ID --series CALLS
//
// --vmhwm prints {"pid","vmhwm_kb","vmrss_kb","user_us","sys_us"} from
// /proc/PID/status and /proc/PID/stat: bench/side_by_side.ts reads the
// TypeScript child's peak RSS (and the peer's CPU) through it, because Deno
// refuses /proc reads without --allow-all. The other modes are in spawn.go
// (start-up CPU of child processes, which Deno's Command cannot report),
// status.go (the Go counterpart of `cli.ts status`) and push.go (the push
// memory curve and the RSS series).
//
// Workloads (one "round" runs each once, after an untimed warm-up):
//
//	health     N Health round trips; mean µs per call.
//	prefixWarm N x EnsurePrefix with the short turn prefix on one open
//	           session after one untimed call, so every timed call is warm
//	           (the whole prefix reused); mean µs per call.
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
// post_start_rss_kb is VmRSS right after the first Health call.
//
// CPU (getrusage RUSAGE_SELF, all threads, µs): cpu_us holds user and sys per
// workload and round, pass_cpu_us the whole timed pass per round, and
// process_cpu_us the whole process (start-up, warm-up and passes).
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
	"strings"
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
	Client         string               `json:"client"`
	GoVersion      string               `json:"go_version"`
	Rounds         map[string][]float64 `json:"rounds"`
	Units          map[string]string    `json:"units"`
	CPU            map[string][]cpuUse  `json:"cpu_us"`
	PassCPU        []cpuUse             `json:"pass_cpu_us"`
	ProcessCPU     cpuUse               `json:"process_cpu_us"`
	PostStartRSSKB int64                `json:"post_start_rss_kb"`
	RSSHWMKB       int64                `json:"rss_hwm_kb"`
	MaxRSSKB       int64                `json:"maxrss_kb"`
	GoSysBytes     uint64               `json:"go_sys_bytes"`
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
	nWarmPrefixes := flag.Int("warm-prefixes", 500, "warm EnsurePrefix calls per round")
	nTurns := flag.Int("turns", 100, "session turns per round")
	nDecodes := flag.Int("decodes", 5, "512-token decodes per round")
	nPrefixes := flag.Int("prefixes", 50, "64 KiB EnsurePrefix calls per round")
	nPushes := flag.Int("pushes", 3, "16 MiB pushes per round")
	skipPush := flag.Bool("skip-push", false, "leave out push16m, warm-up included (to see the peak RSS without it)")
	hwmPID := flag.Int("vmhwm", 0, "only print VmHWM/VmRSS and CPU of this pid")
	spawnRuns := flag.Int("spawn", 0, "run the command after -- this many times; print each run's CPU")
	statusRoot := flag.String("status", "", "only report the daemon of this data root, like `cli.ts status`")
	genFile := flag.String("gen-file", "", "only write --size bytes of the push pattern to this file")
	size := flag.Int64("size", 0, "--gen-file: bytes to write")
	pushFilePath := flag.String("push-file", "", "only push this file (digest computed) as --name, then remove it")
	name := flag.String("name", "bench-curve-go", "--push-file: model name")
	seriesCalls := flag.Int("series", 0, "only make this many Health calls, reporting RSS along the way")
	version := flag.Bool("version", false, "only print the Go version")
	flag.Parse()
	switch {
	case *version:
		return json.NewEncoder(os.Stdout).Encode(map[string]string{"go_version": runtime.Version()})
	case *hwmPID > 0:
		return printProc(*hwmPID)
	case *spawnRuns > 0:
		return spawn(*spawnRuns, flag.Args())
	case *statusRoot != "":
		return status(*statusRoot)
	case *genFile != "":
		return generateFile(*genFile, *size)
	}
	if *endpoint == "" || *instance == "" {
		return fmt.Errorf("--endpoint and --instance are required")
	}
	if *pushFilePath != "" {
		return pushFile(*endpoint, *instance, *pushFilePath, *name)
	}
	if *seriesCalls > 0 {
		return series(*endpoint, *instance, *seriesCalls)
	}

	c, err := dialHealthy(*endpoint, *instance)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	_, postStartRSS := procStatus("/proc/self/status")
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
		Client:         "go",
		GoVersion:      runtime.Version(),
		Rounds:         map[string][]float64{},
		CPU:            map[string][]cpuUse{},
		PostStartRSSKB: postStartRSS,
		Units: map[string]string{
			"health": "us/call", "prefixWarm": "us/call", "turn": "us/turn", "decode": "tokens/s",
			"prefix64k": "us/call", "push16m": "MiB/s",
		},
	}
	// The same order as TsWorkloads.round in bench/workloads.ts.
	steps := []struct {
		name string
		run  func() (float64, error)
	}{
		{"health", func() (float64, error) { return w.health(ctx, *nHealth) }},
		{"prefixWarm", func() (float64, error) { return w.prefixWarm(ctx, *nWarmPrefixes) }},
		{"turn", func() (float64, error) { return w.turns(ctx, *nTurns) }},
		{"decode", func() (float64, error) { return w.decode(ctx, *nDecodes) }},
		{"prefix64k", func() (float64, error) { return w.prefix64k(ctx, *nPrefixes) }},
		{"push16m", func() (float64, error) { return w.pushes(ctx, *nPushes) }},
	}
	for r := 0; r < *rounds; r++ {
		passStart := cpuNow()
		for _, step := range steps {
			if step.name == "push16m" && w.push == nil {
				continue
			}
			before := cpuNow()
			v, err := step.run()
			if err != nil {
				return fmt.Errorf("%s: %w", step.name, err)
			}
			res.CPU[step.name] = append(res.CPU[step.name], cpuNow().sub(before))
			res.Rounds[step.name] = append(res.Rounds[step.name], v)
		}
		res.PassCPU = append(res.PassCPU, cpuNow().sub(passStart))
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.GoSysBytes = ms.Sys
	res.RSSHWMKB, _ = procStatus("/proc/self/status")
	res.ProcessCPU = cpuNow()
	res.MaxRSSKB = maxRSSKB()
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
	if _, err := w.prefixWarm(ctx, 20); err != nil {
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

// openWarm opens a session and warms the turn prefix (the first step of prefixWarm, turns and decode).
func (w *workloads) openWarm(ctx context.Context) (transport.Session, error) {
	s, err := w.c.OpenSession(ctx, openReq())
	if err != nil {
		return nil, err
	}
	if _, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: turnPrefix}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (w *workloads) prefixWarm(ctx context.Context, n int) (float64, error) {
	s, err := w.openWarm(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	start := time.Now()
	for i := 0; i < n; i++ {
		st, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: turnPrefix})
		if err != nil {
			return 0, err
		}
		if st.PrefilledTokens != 0 || st.ReusedTokens == 0 {
			return 0, fmt.Errorf("EnsurePrefix was not warm: %+v", st)
		}
	}
	return micros(time.Since(start)) / float64(n), nil
}

func (w *workloads) turns(ctx context.Context, n int) (float64, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		s, err := w.openWarm(ctx)
		if err != nil {
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
	s, err := w.openWarm(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
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

// dialHealthy dials the peer as the Go client does and makes the first Health
// call, after which the RSS counts as post-start.
func dialHealthy(endpoint, instance string) (*transportgrpc.Client, error) {
	c, err := transportgrpc.DialLeader(endpoint, instance)
	if err != nil {
		return nil, err
	}
	if _, err := c.Health(context.Background()); err != nil {
		c.Close()
		return nil, fmt.Errorf("health: %w", err)
	}
	return c, nil
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
