// Command peer is the Go side of the modeldconn interop tests: a modeld
// stand-in built from the real contenox/runtime v0.36.0 packages. It takes the
// data-root lease with the real liblease, serves the real
// runtime/transport/grpc server, and answers with the real in-memory service
// (optionally wrapped in the real modeld/slot single-slot service), plus a few
// scripted behaviours the TypeScript suite cannot get from a stock modeld.
//
// Usage:
//
//	peer --data-root DIR [--mode memory|slot] [--backend llama] [--ttl 30s]
//	     [--listen 127.0.0.1:0] [--models-dir DIR] [--idle-ttl 0] [--log FILE]
//
// Once serving it prints exactly one stdout line:
//
//	peer ready endpoint=<host:port> instance=<lease instance_id> mode=<mode>
//
// SIGINT/SIGTERM: GracefulStop (forced Stop after 10 s so a stuck stream
// cannot hang a test run), release the lease, print "peer stopped ...", exit 0.
//
// Modes:
//
//	memory  transport.NewMemoryService(WithOwnerFence(instance)) served bare,
//	        like the Go transport tests. Handles are "<instance>/<seq>".
//	        Status/LoadModel/UnloadModel and the node-admin RPCs answer
//	        UNIMPLEMENTED "unsupported_feature: ..." (the real server's answer
//	        for a service without those extensions).
//	slot    modeld/slot.New(memory, WithOwner, WithBackend, WithDataRoot,
//	        WithModelsDir, WithIdleTTL) — what real modeld serves at v0.36.0.
//	        Handles are "<instance>/<generation>/<seq>"; one open handle at a
//	        time; node-admin RPCs work on --models-dir (default
//	        <data-root>/models). Requests with an empty path are resolved
//	        against the models dir, so send a non-empty "path" (any string; the
//	        memory backend ignores it) and "type":"llama".
//
// Scripted behaviours are selected by the OpenSession/Describe/Embed/LoadModel
// "model_name" (any other name gets plain memory-service semantics: one token
// per rune, Decode yields MaxTokens chunks of "x"):
//
//	overflow-unary   EnsurePrefix fails with overflow("prefix", 2, 5, 4): the
//	                 status carries a google.rpc.ErrorInfo detail.
//	overflow-stream  Decode's first chunk is overflow("decode", 3, 1, 4):
//	                 error_token + error_detail, status OK.
//	thinking-tools   Decode yields {thinking:"think"} then {text:"answer",
//	                 tool_calls:[call_1 lookup {"q":"x"}]}; logs the config.
//	slow-decode      Decode yields "x" every 20 ms up to MaxTokens (<=0: 1000);
//	                 on cancellation it stops and logs "decode cancelled".
//	cancelled        OpenSession fails with context.Canceled (after the fence
//	                 check) -> CANCELLED "context_canceled: context canceled".
//	embed            Embed returns [1, 2.5, -3] (other names: unsupported_feature).
//	stale-gen        Decode's first chunk is an slot_generation_stale error.
//	describe-all     Describe returns a ModelInfo with every field non-zero.
//	fatal-prefix     EnsurePrefix fails with session_fatal (slot evicts).
//	snapshot-state   Snapshot returns state_id "deadbeefcafef00d", a 5 MiB
//	                 State (never on the wire), resident 42, prefix 21,
//	                 num_ctx 128; Restore accepts anything and logs what it got.
//	                 In slot mode the slot replaces state_id with the sha256 of
//	                 State and keeps the blob under <data-root>/modeld-blobs.
//
// --log FILE appends JSON lines (see logging.go): "wire" entries hold every
// decoded request message (re-marshalled Go wire struct plus the raw JSON
// text received) and each RPC's final status; "svc" entries hold the
// transport structs the service layer received; "script" entries are
// scripted events such as "decode cancelled".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/contenox/runtime/liblease"
	"github.com/contenox/runtime/modeld/slot"
	"github.com/contenox/runtime/runtime/transport"
	transportgrpc "github.com/contenox/runtime/runtime/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// maxMessageBytes mirrors the server limit transportgrpc.Serve sets at v0.36.0
// (unexported there); we build the grpc.Server ourselves to add the logger.
const maxMessageBytes = 512 << 20

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

func run() error {
	dataRoot := flag.String("data-root", "", "data root holding modeld.lease (required)")
	mode := flag.String("mode", "memory", "service to serve: memory | slot")
	backend := flag.String("backend", "llama", "backend name advertised in the lease, Health and Status")
	ttl := flag.Duration("ttl", 30*time.Second, "lease TTL (renewed every TTL/3)")
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	modelsDir := flag.String("models-dir", "", "slot mode: models directory (default <data-root>/models)")
	idleTTL := flag.Duration("idle-ttl", 0, "slot mode: idle reaper TTL (0 disables)")
	logPath := flag.String("log", "", "append JSON-lines request log to this file")
	flag.Parse()
	if *dataRoot == "" {
		return errors.New("--data-root is required")
	}
	if *mode != "memory" && *mode != "slot" {
		return fmt.Errorf("--mode must be memory or slot, got %q", *mode)
	}
	if err := os.MkdirAll(*dataRoot, 0o700); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var elog *eventLog
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		elog = &eventLog{w: f}
		// Replaces the transport codec (same name, same encoding/json
		// behaviour) so the raw request bytes can be logged.
		encoding.RegisterCodec(capturingCodec{log: elog})
	}

	// Same order as modeld: listen first so the lease can advertise the endpoint.
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	endpoint := lis.Addr().String()
	lease, err := liblease.Acquire(filepath.Join(*dataRoot, "modeld.lease"), *ttl,
		liblease.WithMeta(map[string]string{"endpoint": endpoint, "backend": *backend}))
	if err != nil {
		_ = lis.Close()
		return err
	}
	id := lease.InstanceID()

	var svc transport.Service = &scriptedService{
		MemoryService: transport.NewMemoryService(transport.WithOwnerFence(id)),
		log:           elog,
	}
	if *mode == "slot" {
		s := slot.New(svc,
			slot.WithOwner(id),
			slot.WithBackend(*backend),
			slot.WithDataRoot(*dataRoot),
			slot.WithModelsDir(*modelsDir),
			slot.WithIdleTTL(*idleTTL),
		)
		s.StartReaper(ctx)
		svc = s
	}
	if elog != nil {
		svc = &loggedService{inner: svc, log: elog}
	}

	srv := transportgrpc.NewServer(svc, id, *backend)
	opts := []grpc.ServerOption{
		// srv is also the stats handler that binds sessions to connections.
		grpc.StatsHandler(srv),
		grpc.MaxRecvMsgSize(maxMessageBytes),
		grpc.MaxSendMsgSize(maxMessageBytes),
	}
	if elog != nil {
		opts = append(opts, grpc.StatsHandler(wireLogger{log: elog}))
	}
	gs := grpc.NewServer(opts...)
	srv.Register(gs)
	serveErr := make(chan error, 1)
	go func() { serveErr <- gs.Serve(lis) }()
	fmt.Printf("peer ready endpoint=%s instance=%s mode=%s\n", endpoint, id, *mode)

	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	lost := renewLoop(renewCtx, lease, *ttl)

	select {
	case <-ctx.Done():
	case err := <-lost:
		fmt.Fprintln(os.Stderr, "peer: lost lease, shutting down:", err)
	case err := <-serveErr:
		if err != nil {
			_ = lease.Release()
			return fmt.Errorf("serve: %w", err)
		}
	}
	stopRenew()
	gracefulStop(gs, 10*time.Second)
	if err := lease.Release(); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	fmt.Printf("peer stopped instance=%s\n", id)
	return nil
}

// renewLoop keeps the lease fresh like modeld does (every TTL/3) and reports
// the first renewal failure; the caller treats it as losing ownership.
func renewLoop(ctx context.Context, lease *liblease.Lease, ttl time.Duration) <-chan error {
	lost := make(chan error, 1)
	interval := ttl / 3
	if interval <= 0 {
		interval = time.Second
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := lease.Renew(); err != nil {
					lost <- err
					return
				}
			}
		}
	}()
	return lost
}

// gracefulStop waits for in-flight RPCs (including open Decode streams, as
// modeld does) but falls back to a hard Stop so tests cannot hang on it.
func gracefulStop(gs *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		fmt.Fprintln(os.Stderr, "peer: graceful stop timed out; forcing stop")
		gs.Stop()
		<-done
	}
}
