// Command hostile is an h2c server that misbehaves on purpose, for the
// client's fault suite (tests/faults). It opens one loopback listener per
// mode, prints "<mode> <host:port>" for each and then "ready", and exits when
// its stdin closes. Every connection of a listener behaves as its mode says:
//
//	ok              a well-behaved modeld stand-in: Health, OpenSession,
//	                CloseSession answer; Decode streams {"text":"tok "} until reset
//	nosettings      accepts and reads, never writes a byte (no SETTINGS)
//	stall           handshakes, never answers a request
//	deaf            as stall, and never answers a PING either (a hung peer)
//	noread          as stall, and never reads a request body (no WINDOW_UPDATE)
//	headersonly     answers with response HEADERS, then nothing
//	hugeprefix      HEADERS, then a message prefix of 2 GiB and 64 KiB of data, then stalls
//	big             a 40 MiB Health reply in 16 KiB DATA frames (flow-controlled)
//	refused         the first stream of each connection gets RST_STREAM REFUSED_STREAM
//	refusedalways   every stream gets RST_STREAM REFUSED_STREAM
//	rstinternal     HEADERS, then RST_STREAM INTERNAL_ERROR
//	rstnoerror      HEADERS, then RST_STREAM NO_ERROR (no trailers)
//	goaway          holds the first stream up to 300 ms; when a second one arrives,
//	                sends GOAWAY naming the first as the last stream, answers it and
//	                closes: later streams are unprocessed (a lone stream is answered)
//	goawayzero      GOAWAY with last-stream-id 0 on the first request, then FIN
//	fin             HEADERS and half a message, then TCP FIN
//	finbefore       reads the request, then TCP FIN without answering
//	rst             HEADERS and half a message, then TCP RST
//	rstbefore       reads the request, then TCP RST
//	details0        grpc-status 13 with grpc-status-details-bin holding code 0
//	detailsmismatch grpc-status 9 (model_busy) with details holding code 3
//	detailsgarbage  grpc-status 9 (model_busy) with details that are not base64
//	detailsbadproto grpc-status 9 (model_busy) with base64 details that are not a Status
//	http503         HTTP status 503 without any grpc-status (a proxy's answer)
//
// With HOSTILE_DEBUG set, why a connection's read loop ended goes to stderr.
// Loopback only; nothing here is meant to be reachable from elsewhere.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var modes = []string{
	"ok", "nosettings", "stall", "deaf", "noread", "headersonly", "hugeprefix", "big", "refused", "refusedalways",
	"rstinternal", "rstnoerror", "goaway", "goawayzero", "fin", "finbefore", "rst", "rstbefore",
	"details0", "detailsmismatch", "detailsgarbage", "detailsbadproto", "http503",
}

const contentType = "application/grpc+contenoxtransportjson"

func main() {
	out := bufio.NewWriter(os.Stdout)
	for _, mode := range modes {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "hostile:", err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "%s %s\n", mode, lis.Addr())
		go accept(lis, mode)
	}
	fmt.Fprintln(out, "ready")
	out.Flush()
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func accept(lis net.Listener, mode string) {
	for {
		nc, err := lis.Accept()
		if err != nil {
			return
		}
		go serve(nc, mode)
	}
}

type stream struct {
	path   string
	window int64
	reset  bool
}

type conn struct {
	nc      net.Conn
	mode    string
	fr      *http2.Framer
	wmu     sync.Mutex
	mu      sync.Mutex
	cond    *sync.Cond
	connWin int64
	initWin int64
	streams map[uint32]*stream
	seen    int
	closed  bool
	held    chan struct{} // goaway: a second request arrived
}

func serve(nc net.Conn, mode string) {
	defer nc.Close()
	if mode == "nosettings" {
		_, _ = io.Copy(io.Discard, nc)
		return
	}
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	c := &conn{
		nc: nc, mode: mode, connWin: 65535, initWin: 65535,
		streams: map[uint32]*stream{}, held: make(chan struct{}, 1),
	}
	c.cond = sync.NewCond(&c.mu)
	c.fr = http2.NewFramer(nc, nc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.write(func() error { return c.fr.WriteSettings() })
	c.readLoop()
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *conn) write(f func() error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_ = f()
}

func (c *conn) readLoop() {
	for {
		frame, err := c.fr.ReadFrame()
		if err != nil {
			if os.Getenv("HOSTILE_DEBUG") != "" {
				fmt.Fprintln(os.Stderr, "hostile: read:", err)
			}
			return
		}
		switch f := frame.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			_ = f.ForeachSetting(func(s http2.Setting) error {
				if s.ID == http2.SettingInitialWindowSize {
					c.mu.Lock()
					delta := int64(s.Val) - c.initWin
					c.initWin = int64(s.Val)
					for _, st := range c.streams {
						st.window += delta
					}
					c.cond.Broadcast()
					c.mu.Unlock()
				}
				return nil
			})
			c.write(func() error { return c.fr.WriteSettingsAck() })
		case *http2.PingFrame:
			if os.Getenv("HOSTILE_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "%s: PING ack=%v\n", c.mode, f.IsAck())
			}
			if !f.IsAck() && c.mode != "deaf" {
				data := f.Data
				c.write(func() error { return c.fr.WritePing(true, data) })
			}
		case *http2.WindowUpdateFrame:
			c.mu.Lock()
			if f.StreamID == 0 {
				c.connWin += int64(f.Increment)
			} else if st := c.streams[f.StreamID]; st != nil {
				st.window += int64(f.Increment)
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		case *http2.MetaHeadersFrame:
			c.mu.Lock()
			c.streams[f.StreamID] = &stream{path: f.PseudoValue("path"), window: c.initWin}
			c.mu.Unlock()
			if f.StreamEnded() {
				c.requestDone(f.StreamID)
			}
		case *http2.DataFrame:
			if n := len(f.Data()); n > 0 && c.mode != "noread" {
				id := f.StreamID
				c.write(func() error {
					_ = c.fr.WriteWindowUpdate(0, uint32(n))
					return c.fr.WriteWindowUpdate(id, uint32(n))
				})
			}
			if f.StreamEnded() {
				c.requestDone(f.StreamID)
			}
		case *http2.RSTStreamFrame:
			if os.Getenv("HOSTILE_DEBUG") != "" {
				c.mu.Lock()
				path := ""
				if st := c.streams[f.StreamID]; st != nil {
					path = st.path
				}
				c.mu.Unlock()
				fmt.Fprintf(os.Stderr, "hostile: RST_STREAM %v on stream %d (%s)\n", f.ErrCode, f.StreamID, path)
			}
			c.mu.Lock()
			if st := c.streams[f.StreamID]; st != nil {
				st.reset = true
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		}
	}
}

func (c *conn) requestDone(id uint32) {
	c.mu.Lock()
	c.seen++
	n := c.seen
	path := c.streams[id].path
	c.mu.Unlock()
	go c.handle(id, path, n)
}

func (c *conn) headers(id uint32, end bool, fields ...string) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	c.write(func() error {
		return c.fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID: id, BlockFragment: buf.Bytes(), EndStream: end, EndHeaders: true,
		})
	})
}

func (c *conn) respond(id uint32) {
	c.headers(id, false, ":status", "200", "content-type", contentType)
}

func (c *conn) trailers(id uint32, code int, message string, extra ...string) {
	c.headers(id, true, append([]string{"grpc-status", fmt.Sprint(code), "grpc-message", message}, extra...)...)
}

func (c *conn) trailersOnly(id uint32, code int, message string, extra ...string) {
	c.headers(id, true, append([]string{
		":status", "200", "content-type", contentType,
		"grpc-status", fmt.Sprint(code), "grpc-message", message,
	}, extra...)...)
}

func (c *conn) rst(id uint32, code http2.ErrCode) {
	c.write(func() error { return c.fr.WriteRSTStream(id, code) })
}

// data writes b on stream id in frames of at most 16 KiB, within flow control.
// It returns false when the stream was reset or the connection closed.
func (c *conn) data(id uint32, b []byte, end bool) bool {
	for len(b) > 0 || end {
		c.mu.Lock()
		st := c.streams[id]
		for !c.closed && !st.reset && len(b) > 0 && (c.connWin <= 0 || st.window <= 0) {
			c.cond.Wait()
		}
		if c.closed || st.reset {
			c.mu.Unlock()
			return false
		}
		n := int64(len(b))
		n = min(n, 16384, c.connWin, st.window)
		if len(b) == 0 {
			n = 0
		}
		c.connWin -= n
		st.window -= n
		c.mu.Unlock()
		chunk := b[:n]
		b = b[n:]
		last := end && len(b) == 0
		c.write(func() error { return c.fr.WriteData(id, last, chunk) })
		if last {
			return true
		}
	}
	return true
}

func envelope(msg []byte) []byte {
	out := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	copy(out[5:], msg)
	return out
}

// statusProto is a serialized google.rpc.Status{code, message}.
func statusProto(code int, message string) []byte {
	out := []byte{0x08}
	out = binary.AppendUvarint(out, uint64(code))
	out = append(out, 0x12)
	out = binary.AppendUvarint(out, uint64(len(message)))
	return append(out, message...)
}

const busy = "model_busy: modeld active model slot is busy"

func (c *conn) handle(id uint32, path string, n int) {
	method := path[strings.LastIndex(path, "/")+1:]
	switch c.mode {
	case "ok":
		c.ok(id, method)
	case "stall", "deaf", "noread":
	case "headersonly":
		c.respond(id)
	case "hugeprefix":
		c.respond(id)
		prefix := []byte{0, 0x80, 0, 0, 0}
		c.data(id, append(prefix, bytes.Repeat([]byte("x"), 64<<10)...), false)
	case "big":
		c.respond(id)
		body := `{"instance_id":"hostile","ready":true,"backend":"` + strings.Repeat("b", 40<<20) + `"}`
		if c.data(id, envelope([]byte(body)), false) {
			c.trailers(id, 0, "")
		}
	case "refused":
		if n == 1 {
			c.rst(id, http2.ErrCodeRefusedStream)
			return
		}
		c.ok(id, method)
	case "refusedalways":
		c.rst(id, http2.ErrCodeRefusedStream)
	case "rstinternal":
		c.respond(id)
		c.rst(id, http2.ErrCodeInternal)
	case "rstnoerror":
		c.respond(id)
		c.rst(id, http2.ErrCodeNo)
	case "goaway":
		if n > 1 {
			select {
			case c.held <- struct{}{}:
			default:
			}
			return // above the GOAWAY's last stream id: never processed
		}
		select {
		case <-c.held:
		case <-time.After(300 * time.Millisecond):
			c.ok(id, method) // alone on its connection: no GOAWAY
			return
		}
		c.write(func() error { return c.fr.WriteGoAway(id, http2.ErrCodeNo, nil) })
		c.ok(id, method)
		time.Sleep(100 * time.Millisecond)
		c.nc.Close()
	case "goawayzero":
		c.write(func() error { return c.fr.WriteGoAway(0, http2.ErrCodeNo, nil) })
		time.Sleep(50 * time.Millisecond)
		c.nc.Close()
	case "fin", "rst":
		c.respond(id)
		c.data(id, envelope([]byte(`{"ready":true,"backend":"half"}`))[:12], false)
		time.Sleep(50 * time.Millisecond)
		c.drop(c.mode == "rst")
	case "finbefore":
		c.drop(false)
	case "rstbefore":
		c.drop(true)
	case "http503":
		c.headers(id, true, ":status", "503", "content-type", "text/plain")
	case "details0":
		c.trailersOnly(id, 13, "internal: boom", "grpc-status-details-bin",
			base64.RawStdEncoding.EncodeToString(statusProto(0, "")))
	case "detailsmismatch":
		c.trailersOnly(id, 9, busy, "grpc-status-details-bin",
			base64.RawStdEncoding.EncodeToString(statusProto(3, "invalid")))
	case "detailsgarbage":
		c.trailersOnly(id, 9, busy, "grpc-status-details-bin", "!!!not base64!!!")
	case "detailsbadproto":
		c.trailersOnly(id, 9, busy, "grpc-status-details-bin",
			base64.RawStdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a}))
	}
}

func (c *conn) drop(reset bool) {
	if tcp, ok := c.nc.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	c.nc.Close()
}

func (c *conn) ok(id uint32, method string) {
	var body string
	switch method {
	case "Health":
		body = `{"instance_id":"hostile","ready":true,"backend":"llama"}`
	case "OpenSession":
		body = `{"handle":"h1"}`
	case "Decode":
		c.respond(id)
		chunk := envelope([]byte(`{"text":"tok "}`))
		batch := bytes.Repeat(chunk, 64)
		for c.data(id, batch, false) {
		}
		return
	default:
		body = `{}`
	}
	c.respond(id)
	if c.data(id, envelope([]byte(body)), false) {
		c.trailers(id, 0, "")
	}
}
