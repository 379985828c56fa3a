package main

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/contenox/runtime/runtime/transport"
)

// Model names that select a scripted behaviour (documented in main.go).
const (
	modelOverflowUnary  = "overflow-unary"
	modelOverflowStream = "overflow-stream"
	modelThinkingTools  = "thinking-tools"
	modelSlowDecode     = "slow-decode"
	modelCancelled      = "cancelled"
	modelEmbed          = "embed"
	modelStaleGen       = "stale-gen"
	modelDescribeAll    = "describe-all"
	modelFatalPrefix    = "fatal-prefix"
	modelSnapshotState  = "snapshot-state"
)

// slowDecodeInterval is the gap between slow-decode chunks; slowDecodeDefault
// bounds a slow decode that asked for MaxTokens <= 0.
const (
	slowDecodeInterval = 20 * time.Millisecond
	slowDecodeDefault  = 1000
)

// scriptedService is the real MemoryService with per-model-name overrides.
// Every method runs the memory service first so its body-fence check
// (owner_instance_id) applies to scripted models too.
type scriptedService struct {
	*transport.MemoryService
	log *eventLog
}

func (s *scriptedService) OpenSession(ctx context.Context, req transport.OpenSessionRequest) (transport.Session, error) {
	sess, err := s.MemoryService.OpenSession(ctx, req)
	if err != nil {
		return nil, err
	}
	if req.ModelName == modelCancelled {
		_ = sess.Close()
		return nil, context.Canceled
	}
	return &scriptedSession{Session: sess, model: req.ModelName, log: s.log}, nil
}

func (s *scriptedService) Describe(ctx context.Context, req transport.OpenSessionRequest) (transport.ModelInfo, error) {
	info, err := s.MemoryService.Describe(ctx, req)
	if err != nil || req.ModelName != modelDescribeAll {
		return info, err
	}
	return describeAllInfo(), nil
}

func (s *scriptedService) Embed(ctx context.Context, req transport.EmbedRequest) (transport.EmbedResult, error) {
	res, err := s.MemoryService.Embed(ctx, req)
	if req.ModelName != modelEmbed || errors.Is(err, transport.ErrStaleFence) {
		return res, err
	}
	return transport.EmbedResult{Vector: []float32{1, 2.5, -3}}, nil
}

// describeAllInfo sets every ModelInfo field to a distinctive non-zero value.
// int64 fields go above 2^53 (and to MaxInt64) so a client that parses JSON
// numbers as doubles loses precision visibly; Reason contains characters Go's
// encoder escapes (\u003c \u003e \u0026 \u2028).
func describeAllInfo() transport.ModelInfo {
	return transport.ModelInfo{
		ModelMaxContext:                     131072,
		EffectiveContext:                    32768,
		MemoryContextTokens:                 65536,
		HotContextTokens:                    16384,
		PlannerEffectiveContext:             98304,
		KVBytesPerToken:                     9007199254740993, // 2^53 + 1
		FreeBytes:                           9007199254740995,
		WeightsBytes:                        9223372036854775807, // MaxInt64
		OverheadBytes:                       1234567890123,
		ReservedBytes:                       2345678901234,
		UserLimitBytes:                      3456789012345,
		MinFreeBytes:                        4567890123456,
		HostColdBudgetBytes:                 5678901234567,
		UsableBytes:                         6789012345678,
		RequiredBytes:                       7890123456789,
		Clamped:                             true,
		Reason:                              "clamped <kv> & \"quotes\" \u2028 ünï ✓",
		DeviceKind:                          "gpu",
		DeviceID:                            "cuda:0",
		DeviceTotalBytes:                    9007199254740997,
		SharedWithDisplay:                   true,
		RequestedGpuLayers:                  99,
		ResolvedGpuLayers:                   33,
		SparseAttention:                     true,
		SlidingWindowAttentionTokens:        4096,
		ChatTemplateFormat:                  "chatml",
		ChatTemplateThinkingStartTag:        "<think>",
		ChatTemplateReasoningFormat:         "deepseek",
		ChatTemplateSupportsToolCalls:       true,
		ChatTemplateSupportsThinking:        true,
		ChatTemplateSupportsReasoningEffort: true,
		RuntimeName:                         "llama.cpp",
		RuntimeDigest:                       "sha256:runtime-digest",
		RuntimeSystemInfo:                   "AVX2 = 1 | CUDA = 1",
		SupportsGPUOffload:                  true,
		Devices: []transport.DeviceInfo{
			{Index: 1, Name: "dev-one", Description: "Device One", Type: "gpu",
				MemoryFree: 9007199254740999, MemoryTotal: 9007199254741001,
				MemoryFreeKnown: true, MemoryTotalKnown: true},
			{Index: 2, Name: "dev-two", Description: "Device Two", Type: "igpu",
				MemoryFree: 7, MemoryTotal: 8,
				MemoryFreeKnown: true, MemoryTotalKnown: true},
		},
	}
}

// scriptedSession is a real memory session with per-model overrides; anything
// not overridden keeps the memory semantics.
type scriptedSession struct {
	transport.Session
	model string
	log   *eventLog
}

func (s *scriptedSession) EnsurePrefix(ctx context.Context, prefix transport.PrefixInput) (transport.PrefixStatus, error) {
	switch s.model {
	case modelOverflowUnary:
		return transport.PrefixStatus{}, transport.NewContextOverflowError("prefix", 2, 5, 4)
	case modelFatalPrefix:
		return transport.PrefixStatus{}, transport.ErrSessionFatal
	}
	return s.Session.EnsurePrefix(ctx, prefix)
}

func (s *scriptedSession) Decode(ctx context.Context, cfg transport.DecodeConfig) (<-chan transport.StreamChunk, error) {
	switch s.model {
	case modelOverflowStream:
		return chunks(transport.StreamChunk{Error: transport.NewContextOverflowError("decode", 3, 1, 4)}), nil
	case modelStaleGen:
		return chunks(transport.StreamChunk{Error: transport.ErrSlotGenerationStale}), nil
	case modelThinkingTools:
		s.log.script(s.model, "decode config", cfg, -1)
		var call transport.ToolCall
		call.ID = "call_1"
		call.Type = "function"
		call.Function.Name = "lookup"
		call.Function.Arguments = `{"q":"x"}`
		return chunks(
			transport.StreamChunk{Thinking: "think"},
			transport.StreamChunk{Text: "answer", ToolCalls: []transport.ToolCall{call}},
		), nil
	case modelSlowDecode:
		return s.slowDecode(ctx, cfg), nil
	}
	return s.Session.Decode(ctx, cfg)
}

// slowDecode streams one "x" per interval and stops as soon as ctx ends (the
// client cancelled or broke out of the stream), logging how far it got.
func (s *scriptedSession) slowDecode(ctx context.Context, cfg transport.DecodeConfig) <-chan transport.StreamChunk {
	limit := cfg.MaxTokens
	if limit <= 0 {
		limit = slowDecodeDefault
	}
	out := make(chan transport.StreamChunk)
	go func() {
		defer close(out)
		t := time.NewTicker(slowDecodeInterval)
		defer t.Stop()
		for sent := 0; sent < limit; sent++ {
			select {
			case <-t.C:
			case <-ctx.Done():
				s.log.script(s.model, "decode cancelled", nil, sent)
				return
			}
			select {
			case out <- transport.StreamChunk{Text: "x"}:
			case <-ctx.Done():
				s.log.script(s.model, "decode cancelled", nil, sent)
				return
			}
		}
		s.log.script(s.model, "decode finished", nil, limit)
	}()
	return out
}

func (s *scriptedSession) Snapshot(ctx context.Context) (transport.SessionSnapshot, error) {
	snap, err := s.Session.Snapshot(ctx)
	if err != nil || s.model != modelSnapshotState {
		return snap, err
	}
	snap.StateID = "deadbeefcafef00d"
	snap.State = bytes.Repeat([]byte{0xAB}, 5<<20)
	snap.ResidentTokens = 42
	snap.PrefixTokens = 21
	snap.NumCtx = 128
	return snap, nil
}

func (s *scriptedSession) Restore(ctx context.Context, snap transport.SessionSnapshot) error {
	if s.model != modelSnapshotState {
		return s.Session.Restore(ctx, snap)
	}
	// State is json:"-", so log its size separately from the snapshot itself.
	s.log.script(s.model, "restore", snap, len(snap.State))
	return nil
}

func chunks(cs ...transport.StreamChunk) <-chan transport.StreamChunk {
	ch := make(chan transport.StreamChunk, len(cs))
	for _, c := range cs {
		ch <- c
	}
	close(ch)
	return ch
}
