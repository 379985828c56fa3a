// Command goclient runs the contract's client checklist (runtime/transport/grpc
// grpc_test.go, section 10.1) with the REAL Go client of contenox/runtime
// v0.36.0 against any server, so the TypeScript test daemon of this repo can
// be judged by the Go code it imitates. One line per check, "ok <name>" or
// "FAIL <name>: <reason>"; exit status 1 when any check failed.
//
//	goclient --endpoint 127.0.0.1:PORT --instance ID [--v0323] [--overflow-detail] [--model-dir DIR | --model PATH]
//
// --v0323 limits the checks to the eight RPCs a v0.32.3 daemon has;
// --overflow-detail requires the typed overflow counts (v0.33.0+ ErrorInfo),
// which a real backend sends and the Go memory service does not;
// --model runs the checks against a real engine: every session opens that
// GGUF file, and token counts are the tokenizer's, so the checks compare them
// with each other (cold prefilled = prefix tokens, warm reuses all of them,
// the decode adds its tokens) instead of with the memory service's runes.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/contenox/runtime/runtime/contextasm"
	"github.com/contenox/runtime/runtime/transport"
	transportgrpc "github.com/contenox/runtime/runtime/transport/grpc"
)

// manifest is the grpc_test.go manifest: a non-zero identity, so a first
// EnsurePrefix is cold (a zero manifest reads as warm at v0.32.3).
func manifest(stable string) contextasm.ContextManifest {
	return contextasm.ContextManifest{
		Backend:              "mem",
		ModelDigest:          "d1",
		PromptFormat:         "f1",
		PromptTemplateDigest: "t1",
		RuntimeDigest:        "r1",
		StableByteHash:       contextasm.HashString(stable),
	}
}

// open opens a session; on a v0.32.4+ slot holding another idle model it loads
// this one first and retries, as runtime/modelrepo/modeldconn does.
func open(ctx context.Context, cl *transportgrpc.Client, req transport.OpenSessionRequest) (transport.Session, error) {
	s, err := cl.OpenSession(ctx, req)
	if errors.Is(err, transport.ErrModelSwitchRequired) || errors.Is(err, transport.ErrModelNotActive) {
		load := transport.LoadModelRequest{ModelName: req.ModelName, Type: req.Type, Path: req.Path, Config: req.Config}
		if _, err := cl.LoadModel(ctx, load); err != nil {
			return nil, fmt.Errorf("load for switch: %w", err)
		}
		s, err = cl.OpenSession(ctx, req)
	}
	return s, err
}

// modelFile is --model: "" for the memory semantics (a token is a rune).
var modelFile string

type checker struct{ failed int }

func (c *checker) check(name string, err error) {
	if err != nil {
		c.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok %s\n", name)
}

// modelDir holds the model files the checks name (m, a, b): a daemon that
// checks that a model path exists (the real one, the TypeScript test daemon)
// needs them to exist.
var modelDir = "/"

// modelPath is the model file a check opens: --model for a real engine, else <modelDir>/<name>.
func modelPath(name string) string {
	if modelFile != "" {
		return modelFile
	}
	return filepath.Join(modelDir, name)
}

func want(cond bool, format string, args ...any) error {
	if cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func main() {
	endpoint := flag.String("endpoint", "", "server host:port")
	instance := flag.String("instance", "", "lease instance id (the fence)")
	old := flag.Bool("v0323", false, "only the v0.32.3 RPCs")
	detail := flag.Bool("overflow-detail", false, "require the overflow counts (ErrorInfo); the Go memory service sends none")
	flag.StringVar(&modelDir, "model-dir", "/", "directory holding the model files m, a and b")
	flag.StringVar(&modelFile, "model", "", "a GGUF file: check a real engine (token counts from its tokenizer)")
	flag.Parse()
	if *endpoint == "" || *instance == "" {
		fmt.Fprintln(os.Stderr, "goclient: --endpoint and --instance are required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := &checker{}

	cl, err := transportgrpc.DialLeader(*endpoint, *instance)
	if err != nil {
		fmt.Printf("FAIL dial: %v\n", err)
		os.Exit(1)
	}
	defer cl.Close()

	h, err := cl.Health(ctx)
	c.check("health", errors.Join(err, want(h.Ready && h.InstanceID == *instance, "health %+v", h)))

	c.check("round trip", roundTrip(ctx, cl, !*old))

	wrong, _ := transportgrpc.DialLeader(*endpoint, "wrong-owner")
	_, err = wrong.OpenSession(ctx, transport.OpenSessionRequest{ModelName: "m", Type: "llama", Path: modelPath("m"), Config: transport.Config{NumCtx: 100}})
	wrong.Close()
	c.check("stale fence", want(errors.Is(err, transport.ErrStaleFence), "got %v", err))

	c.check("overflow", overflow(ctx, cl, *detail))

	if !*old {
		c.check("slot control", slotControl(ctx, cl))
		c.check("model store", modelStore(ctx, cl))
	}
	if c.failed > 0 {
		os.Exit(1)
	}
}

// roundTrip is grpc_test.go's round trip (plus snapshot/restore at v0.32.4+).
func roundTrip(ctx context.Context, cl *transportgrpc.Client, snapshots bool) error {
	real := modelFile != ""
	s, err := open(ctx, cl, transport.OpenSessionRequest{ModelName: "m", Type: "llama", Path: modelPath("m"), Config: transport.Config{NumCtx: 100}})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	m := manifest("hello")
	cold, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: "hello", Manifest: m})
	coldOK := cold.ReusedTokens == 0 && cold.PrefilledTokens == 5 && cold.PrefixTokens == 5
	if real {
		coldOK = cold.ReusedTokens == 0 && cold.PrefixTokens > 0 && cold.PrefilledTokens == cold.PrefixTokens
	}
	if err = errors.Join(err, want(coldOK, "cold %+v", cold)); err != nil {
		return err
	}
	warm, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: "hello", Manifest: m})
	if err = errors.Join(err, want(warm.ReusedTokens == cold.PrefixTokens && warm.PrefilledTokens == 0, "warm %+v", warm)); err != nil {
		return err
	}
	suffix, err := s.PrefillSuffix(ctx, transport.SuffixInput{Text: " world", Manifest: m})
	if err != nil {
		return fmt.Errorf("suffix: %w", err)
	}
	ch, err := s.Decode(ctx, transport.DecodeConfig{MaxTokens: 3})
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	n := 0
	for chunk := range ch {
		if chunk.Error != nil {
			return fmt.Errorf("decode chunk: %w", chunk.Error)
		}
		n++
	}
	// A real tokenizer may end early (end of generation) or merge a split
	// UTF-8 character into one chunk; it never sends more than MaxTokens.
	if (!real && n != 3) || (real && (n < 1 || n > 3)) {
		return fmt.Errorf("decode: %d chunks, want 3", n)
	}
	resident := 11
	if real {
		resident = s.ExplainContext().ResidentTokens
		if resident <= suffix.ResidentTokens || resident > suffix.ResidentTokens+3 {
			return fmt.Errorf("explain: resident %d after a suffix of %d and 3 decoded tokens", resident, suffix.ResidentTokens)
		}
	}
	if r := s.ExplainContext(); r.ResidentTokens != resident {
		return fmt.Errorf("explain: resident %d, want %d", r.ResidentTokens, resident)
	}
	if snapshots {
		snap, err := s.Snapshot(ctx)
		if err = errors.Join(err, want(snap.ResidentTokens == resident && snap.PrefixTokens == cold.PrefixTokens, "snapshot %+v", snap)); err != nil {
			return err
		}
		if _, err := s.EnsurePrefix(ctx, transport.PrefixInput{Text: "other", Manifest: manifest("other")}); err != nil {
			return err
		}
		if err := s.Restore(ctx, snap); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if r := s.ExplainContext(); r.ResidentTokens != resident {
			return fmt.Errorf("after restore: resident %d, want %d", r.ResidentTokens, resident)
		}
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	_, err = s.EnsurePrefix(ctx, transport.PrefixInput{Text: "x", Manifest: manifest("x")})
	return want(errors.Is(err, transport.ErrSessionClosed), "after close: %v", err)
}

func overflow(ctx context.Context, cl *transportgrpc.Client, counts bool) error {
	s, err := open(ctx, cl, transport.OpenSessionRequest{ModelName: "m", Type: "llama", Path: modelPath("m"), Config: transport.Config{NumCtx: 4}})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer s.Close()
	text := "too many tokens"
	if modelFile != "" {
		text = "far too many tokens for a window of four: qzxv jkwq"
	}
	_, err = s.EnsurePrefix(ctx, transport.PrefixInput{Text: text, Manifest: manifest(text)})
	if !errors.Is(err, transport.ErrContextOverflow) {
		return fmt.Errorf("got %v", err)
	}
	if !counts {
		return nil
	}
	var typed *transport.ContextOverflowError
	if !errors.As(err, &typed) {
		return fmt.Errorf("no typed overflow (no ErrorInfo detail): %v", err)
	}
	return want(typed.Stage == "prefix" && typed.NumCtx == 4 && typed.AdditionalTokens > 0, "detail %+v", typed.ContextOverflowDetail)
}

// slotControl is grpc_test.go's slot test: load, status, open, busy, close, unload.
func slotControl(ctx context.Context, cl *transportgrpc.Client) error {
	a := transport.LoadModelRequest{ModelName: "a", Type: "llama", Path: modelPath("a"), Config: transport.Config{NumCtx: 64}}
	active, err := cl.LoadModel(ctx, a)
	if err = errors.Join(err, want(active.Generation > 0, "generation %d", active.Generation)); err != nil {
		return err
	}
	st, err := cl.Status(ctx)
	if err = errors.Join(err, want(st.State == transport.SlotState("Ready") && st.Active != nil && st.Active.Generation == active.Generation, "status %+v", st)); err != nil {
		return err
	}
	s, err := open(ctx, cl, transport.OpenSessionRequest{ModelName: "a", Type: "llama", Path: modelPath("a"), Config: transport.Config{NumCtx: 64}})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	_, err = cl.LoadModel(ctx, transport.LoadModelRequest{ModelName: "b", Type: "llama", Path: modelPath("b"), Config: transport.Config{NumCtx: 64}})
	if !errors.Is(err, transport.ErrModelBusy) {
		s.Close()
		return fmt.Errorf("load b while held: %v", err)
	}
	if err := s.Close(); err != nil {
		return err
	}
	st, err = cl.Status(ctx)
	if err != nil || st.Active == nil {
		return fmt.Errorf("status after close: %+v %v", st, err)
	}
	return cl.UnloadModel(ctx, transport.UnloadModelRequest{ExpectedGeneration: st.Active.Generation})
}

// modelStore pushes 5 MiB in frames, lists, pushes again, removes, and reads disk stats.
func modelStore(ctx context.Context, cl *transportgrpc.Client) error {
	data := bytes.Repeat([]byte{0, 1, 2, 255}, 5<<20/4)
	sum := sha256.Sum256(data)
	m := transport.PushManifest{Name: "gostore", Type: "llama", Digest: hex.EncodeToString(sum[:]), TotalBytes: int64(len(data)), Format: transport.PushFormatFile}
	res, err := cl.PushModel(ctx, m, bytes.NewReader(data))
	if err = errors.Join(err, want(!res.AlreadyPresent && res.BytesWritten == int64(len(data)), "push %+v", res)); err != nil {
		return err
	}
	models, err := cl.ListModels(ctx)
	if err = errors.Join(err, want(len(models) == 1 && models[0].Digest == m.Digest && models[0].SizeBytes == int64(len(data)), "list %+v", models)); err != nil {
		return err
	}
	if res, err = cl.PushModel(ctx, m, bytes.NewReader(data)); err != nil || !res.AlreadyPresent {
		return fmt.Errorf("second push %+v %v", res, err)
	}
	bad := m
	bad.Name, bad.Digest = "bad", hex.EncodeToString(make([]byte, 32))
	if _, err = cl.PushModel(ctx, bad, bytes.NewReader(data)); !errors.Is(err, transport.ErrDigestMismatch) {
		return fmt.Errorf("wrong digest: %v", err)
	}
	if err := cl.RemoveModel(ctx, "gostore"); err != nil {
		return err
	}
	if err := cl.RemoveModel(ctx, "gostore"); !errors.Is(err, transport.ErrModelNotFound) {
		return fmt.Errorf("remove again: %v", err)
	}
	d, err := cl.DiskStats(ctx)
	return errors.Join(err, want(d.TotalBytes > 0, "disk %+v", d))
}
