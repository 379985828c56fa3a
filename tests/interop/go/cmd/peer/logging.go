package main

// The request log: one JSON object per line, appended to --log FILE.
//
//	{"time":"…","layer":"wire","method":"OpenSession","event":"request",
//	 "req":{…decoded wire struct, re-marshalled…},"raw":"{…exact bytes received…}",
//	 "raw_len":123,"raw_sha256":"…"}
//	{"time":"…","layer":"wire","method":"OpenSession","event":"end","code":0}
//	{"time":"…","layer":"wire","event":"conn end"}
//	{"time":"…","layer":"svc","method":"OpenSession","model":"m","req":{…transport struct…}}
//	{"time":"…","layer":"script","model":"slow-decode","event":"decode cancelled","n":3}
//
// "req"/"raw" are dropped (req_truncated / raw_len + raw_sha256 remain) when
// larger than maxLoggedBytes, e.g. for big PushModel frames.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"path"
	"sync"
	"time"

	"github.com/contenox/runtime/runtime/transport"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

const maxLoggedBytes = 64 << 10

type logEntry struct {
	Time         string          `json:"time"`
	Layer        string          `json:"layer"`
	Method       string          `json:"method,omitempty"`
	Event        string          `json:"event,omitempty"`
	Model        string          `json:"model,omitempty"`
	Req          json.RawMessage `json:"req,omitempty"`
	ReqTruncated bool            `json:"req_truncated,omitempty"`
	Raw          string          `json:"raw,omitempty"`
	RawLen       int             `json:"raw_len,omitempty"`
	RawSHA256    string          `json:"raw_sha256,omitempty"`
	Code         *uint32         `json:"code,omitempty"`
	Message      string          `json:"message,omitempty"`
	N            *int            `json:"n,omitempty"`
}

// eventLog is nil-safe: a nil *eventLog (no --log) logs nothing.
type eventLog struct {
	mu sync.Mutex
	w  io.Writer
	// raw maps a decoded request pointer to the bytes it was decoded from:
	// the codec sees the bytes, the stats handler sees the method name.
	raw sync.Map
}

func (l *eventLog) write(e logEntry) {
	if l == nil {
		return
	}
	e.Time = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(b, '\n'))
}

// withReq marshals v into e.Req unless it is too large to be useful.
func withReq(e logEntry, v any) logEntry {
	if v == nil {
		return e
	}
	b, err := json.Marshal(v)
	switch {
	case err != nil:
		e.Message = "marshal: " + err.Error()
	case len(b) > maxLoggedBytes:
		e.ReqTruncated = true
	default:
		e.Req = b
	}
	return e
}

func withRaw(e logEntry, raw []byte) logEntry {
	sum := sha256.Sum256(raw)
	e.RawLen = len(raw)
	e.RawSHA256 = hex.EncodeToString(sum[:])
	if len(raw) <= maxLoggedBytes {
		e.Raw = string(raw)
	}
	return e
}

func (l *eventLog) svc(method, model string, req any) {
	if l == nil {
		return
	}
	l.write(withReq(logEntry{Layer: "svc", Method: method, Model: model}, req))
}

// script logs a scripted event; n < 0 means "no count".
func (l *eventLog) script(model, event string, req any, n int) {
	if l == nil {
		return
	}
	e := logEntry{Layer: "script", Model: model, Event: event}
	if n >= 0 {
		e.N = &n
	}
	l.write(withReq(e, req))
}

// capturingCodec stands in for the transport's JSON codec under the same
// content-subtype. Encoding is identical (encoding/json both ways); it only
// remembers the raw request bytes for the wire log.
type capturingCodec struct{ log *eventLog }

func (capturingCodec) Name() string                  { return "contenoxtransportjson" }
func (capturingCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

func (c capturingCodec) Unmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err != nil {
		// No InPayload follows a failed decode, so log it here (method unknown;
		// the RPC's "end" entry carries the resulting INTERNAL status).
		e := withRaw(logEntry{Layer: "wire", Event: "decode error", Message: err.Error()}, data)
		c.log.write(e)
		return err
	}
	// Zero-size request types (healthReq) may share one pointer; the worst
	// case is swapping two identical "{}" payloads.
	c.log.raw.Store(v, append([]byte(nil), data...))
	return nil
}

// wireLogger is a second grpc stats handler that logs each decoded request
// message, each RPC's final status and connection ends.
type wireLogger struct{ log *eventLog }

type methodKey struct{}

func (w wireLogger) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, methodKey{}, path.Base(info.FullMethodName))
}

func (w wireLogger) HandleRPC(ctx context.Context, st stats.RPCStats) {
	method, _ := ctx.Value(methodKey{}).(string)
	switch st := st.(type) {
	case *stats.InPayload:
		e := logEntry{Layer: "wire", Method: method, Event: "request"}
		if raw, ok := w.log.raw.LoadAndDelete(st.Payload); ok {
			e = withRaw(e, raw.([]byte))
		}
		w.log.write(withReq(e, st.Payload))
	case *stats.End:
		s := status.Convert(st.Error)
		code := uint32(s.Code())
		w.log.write(logEntry{Layer: "wire", Method: method, Event: "end", Code: &code, Message: s.Message()})
	}
}

func (w wireLogger) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (w wireLogger) HandleConn(_ context.Context, st stats.ConnStats) {
	if _, ok := st.(*stats.ConnEnd); ok {
		w.log.write(logEntry{Layer: "wire", Event: "conn end"})
	}
}

// loggedService logs what the transport server hands to the service layer,
// then delegates. It exposes the controller and node-admin extensions
// unconditionally and answers ErrUnsupportedFeature when the wrapped service
// lacks them, which is exactly what the server does for such a service.
type loggedService struct {
	inner transport.Service
	log   *eventLog
}

var (
	_ transport.Service         = (*loggedService)(nil)
	_ transport.ModelController = (*loggedService)(nil)
	_ transport.NodeAdmin       = (*loggedService)(nil)
)

func (s *loggedService) OpenSession(ctx context.Context, req transport.OpenSessionRequest) (transport.Session, error) {
	s.log.svc("OpenSession", req.ModelName, req)
	sess, err := s.inner.OpenSession(ctx, req)
	if err != nil {
		return nil, err
	}
	return &loggedSession{Session: sess, model: req.ModelName, log: s.log}, nil
}

func (s *loggedService) Describe(ctx context.Context, req transport.OpenSessionRequest) (transport.ModelInfo, error) {
	s.log.svc("Describe", req.ModelName, req)
	return s.inner.Describe(ctx, req)
}

func (s *loggedService) Embed(ctx context.Context, req transport.EmbedRequest) (transport.EmbedResult, error) {
	s.log.svc("Embed", req.ModelName, req)
	return s.inner.Embed(ctx, req)
}

func (s *loggedService) Status(ctx context.Context) (transport.DaemonStatus, error) {
	s.log.svc("Status", "", nil)
	if c, ok := s.inner.(transport.ModelController); ok {
		return c.Status(ctx)
	}
	return transport.DaemonStatus{}, transport.ErrUnsupportedFeature
}

func (s *loggedService) LoadModel(ctx context.Context, req transport.LoadModelRequest) (transport.ActiveModel, error) {
	s.log.svc("LoadModel", req.ModelName, req)
	if c, ok := s.inner.(transport.ModelController); ok {
		return c.LoadModel(ctx, req)
	}
	return transport.ActiveModel{}, transport.ErrUnsupportedFeature
}

func (s *loggedService) UnloadModel(ctx context.Context, req transport.UnloadModelRequest) error {
	s.log.svc("UnloadModel", "", req)
	if c, ok := s.inner.(transport.ModelController); ok {
		return c.UnloadModel(ctx, req)
	}
	return transport.ErrUnsupportedFeature
}

func (s *loggedService) ListModels(ctx context.Context) ([]transport.NodeModel, error) {
	s.log.svc("ListModels", "", nil)
	if a, ok := s.inner.(transport.NodeAdmin); ok {
		return a.ListModels(ctx)
	}
	return nil, transport.ErrUnsupportedFeature
}

func (s *loggedService) RemoveModel(ctx context.Context, name string) error {
	s.log.svc("RemoveModel", name, nil)
	if a, ok := s.inner.(transport.NodeAdmin); ok {
		return a.RemoveModel(ctx, name)
	}
	return transport.ErrUnsupportedFeature
}

func (s *loggedService) DiskStats(ctx context.Context) (transport.NodeDiskStats, error) {
	s.log.svc("DiskStats", "", nil)
	if a, ok := s.inner.(transport.NodeAdmin); ok {
		return a.DiskStats(ctx)
	}
	return transport.NodeDiskStats{}, transport.ErrUnsupportedFeature
}

func (s *loggedService) ReceiveModel(ctx context.Context, m transport.PushManifest, r io.Reader) (transport.PushResult, error) {
	s.log.svc("PushModel", m.Name, m)
	if a, ok := s.inner.(transport.NodeAdmin); ok {
		return a.ReceiveModel(ctx, m, r)
	}
	return transport.PushResult{}, transport.ErrUnsupportedFeature
}

// loggedSession logs each session call. It must forward SlotGeneration: the
// server reads it to mint "<instance>/<generation>/<seq>" handles.
type loggedSession struct {
	transport.Session
	model string
	log   *eventLog
}

func (s *loggedSession) SlotGeneration() uint64 {
	if g, ok := s.Session.(interface{ SlotGeneration() uint64 }); ok {
		return g.SlotGeneration()
	}
	return 0
}

func (s *loggedSession) EnsurePrefix(ctx context.Context, p transport.PrefixInput) (transport.PrefixStatus, error) {
	s.log.svc("EnsurePrefix", s.model, p)
	return s.Session.EnsurePrefix(ctx, p)
}

func (s *loggedSession) PrefillSuffix(ctx context.Context, in transport.SuffixInput) (transport.SuffixStatus, error) {
	s.log.svc("PrefillSuffix", s.model, in)
	return s.Session.PrefillSuffix(ctx, in)
}

func (s *loggedSession) Decode(ctx context.Context, cfg transport.DecodeConfig) (<-chan transport.StreamChunk, error) {
	s.log.svc("Decode", s.model, cfg)
	return s.Session.Decode(ctx, cfg)
}

func (s *loggedSession) ExplainContext() transport.ContextReport {
	s.log.svc("ExplainContext", s.model, nil)
	return s.Session.ExplainContext()
}

func (s *loggedSession) Snapshot(ctx context.Context) (transport.SessionSnapshot, error) {
	s.log.svc("Snapshot", s.model, nil)
	return s.Session.Snapshot(ctx)
}

func (s *loggedSession) Restore(ctx context.Context, snap transport.SessionSnapshot) error {
	s.log.svc("Restore", s.model, snap)
	return s.Session.Restore(ctx, snap)
}

func (s *loggedSession) Close() error {
	s.log.svc("CloseSession", s.model, nil)
	return s.Session.Close()
}
