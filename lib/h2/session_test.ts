/**
 * The HTTP/2 client against a scripted peer on a raw socket: the frames a
 * conforming server may send that grpc-go and our daemon happen not to
 * (CONTINUATION, padding, a small window, a daemon's PING), and the ones no
 * server may send (an oversized frame, broken HPACK), each of which must end
 * the connection with GOAWAY and fail the call as a dropped connection.
 */

import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { envelopeOf as envelope } from "../envelope.ts";
import { dial } from "../transport.ts";
import { isConnectionDrop, isUnprocessed } from "../transport_marks.ts";
import { RemoteNode } from "../client.ts";
import { Session } from "../session.ts";
import { encodeHeaderBlock } from "./hpack.ts";
import { H2Session, type StreamHandler } from "./session.ts";

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** The server side of one scripted connection: reads frames, writes raw bytes. */
class Peer {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(65536);
      const got = await this.conn.read(chunk).catch(() => null);
      if (got === null) return false;
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
    return true;
  }

  /** Reads the client preface. */
  async preface(): Promise<void> {
    assert.ok(await this.#fill(24));
    assert.equal(
      new TextDecoder().decode(this.#buf.subarray(0, 24)),
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    );
    this.#buf = this.#buf.slice(24);
  }

  /** The next frame, or undefined at EOF. */
  async frame(): Promise<Frame | undefined> {
    if (!await this.#fill(9)) return undefined;
    const length = (this.#buf[0] << 16) | (this.#buf[1] << 8) | this.#buf[2];
    if (!await this.#fill(9 + length)) return undefined;
    const f = {
      type: this.#buf[3],
      flags: this.#buf[4],
      id: new DataView(this.#buf.buffer, this.#buf.byteOffset + 5, 4).getUint32(0) & 0x7fffffff,
      payload: this.#buf.slice(9, 9 + length),
    };
    this.#buf = this.#buf.slice(9 + length);
    return f;
  }

  /** The next frame of `type`, skipping others (SETTINGS ACKs, WINDOW_UPDATEs). */
  async expect(type: number): Promise<Frame> {
    for (;;) {
      const f = await this.frame();
      assert.ok(f, `EOF while waiting for a frame of type ${type}`);
      if (f.type === type) return f;
    }
  }

  async send(...frames: Uint8Array[]): Promise<void> {
    for (const f of frames) await this.conn.write(f);
  }

  /** Preface, our SETTINGS (`settings` pairs), the ACK of the client's. */
  async handshake(settings: [number, number][] = []): Promise<void> {
    await this.preface();
    await this.expect(4);
    const payload = new Uint8Array(6 * settings.length);
    settings.forEach(([k, v], i) => {
      new DataView(payload.buffer).setUint16(6 * i, k);
      new DataView(payload.buffer).setUint32(6 * i + 2, v);
    });
    await this.send(frame(4, 0, 0, payload), frame(4, 1, 0, new Uint8Array(0)));
  }
}

function frame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array | number[],
): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const out = new Uint8Array(9 + body.length);
  out[0] = body.length >> 16;
  out[1] = (body.length >> 8) & 0xff;
  out[2] = body.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, id);
  out.set(body, 9);
  return out;
}

/** A listener whose one connection runs `script`. */
function scripted(script: (peer: Peer) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    try {
      await script(new Peer(conn));
    } finally {
      conn.close();
    }
  })();
  let closed = false;
  return {
    port: listener.addr.port,
    endpoint: `127.0.0.1:${listener.addr.port}`,
    async [Symbol.asyncDispose]() {
      if (!closed) listener.close();
      closed = true;
      await done;
    },
  };
}

const CT = "application/grpc+contenoxtransportjson";
const HEALTH_JSON = '{"instance_id":"i-1","ready":true,"backend":"llama"}';

Deno.test("h2: headers over CONTINUATION, padding, Huffman and the dynamic table are read as sent", async () => {
  await using server = scripted(async (peer) => {
    await peer.handshake();
    const req = await peer.expect(1);
    assert.equal(req.id, 1);
    // :status 200 indexed; content-type as a literal with incremental indexing (new name),
    // split between a padded HEADERS and a CONTINUATION.
    const ct = encodeHeaderBlock([["content-type", CT]]); // literal, static name 31
    const indexed = new Uint8Array([0x5f, ...ct.subarray(2)]); // same, with incremental indexing
    const block = new Uint8Array([0x88, ...indexed]);
    await peer.send(
      frame(1, 0x8, 1, [3, ...block.subarray(0, 4), 0, 0, 0]), // PADDED, no END_HEADERS
      frame(9, 0x4, 1, block.subarray(4)), // CONTINUATION, END_HEADERS
      frame(0, 0x8, 1, [2, ...envelope(HEALTH_JSON), 0, 0]), // padded DATA
      // Trailers: grpc-status 0 as a Huffman literal ("0" is 00000 + 111 padding), then the
      // dynamic table's content-type (index 62), which a trailer may repeat.
      frame(1, 0x5, 1, [0x00, 11, ...new TextEncoder().encode("grpc-status"), 0x81, 0x07, 0xbe]),
    );
    await peer.frame(); // until the client closes
  });
  using conn = dial(server.endpoint, "");
  const health = await conn.rpc.health({});
  assert.equal(health.instanceId, "i-1");
  assert.equal(health.ready, true);
});

Deno.test("h2: a frame larger than 16 KiB ends the connection with FRAME_SIZE_ERROR; the call fails as a drop", async () => {
  let goaway: Frame | undefined;
  await using server = scripted(async (peer) => {
    await peer.handshake();
    await peer.expect(1);
    await peer.send(frame(0, 0, 1, new Uint8Array(20_000)));
    goaway = await peer.expect(7);
  });
  using conn = dial(server.endpoint, "");
  const err = await conn.rpc.health({}).then(() => undefined, (e) => e);
  assert.ok(err instanceof ConnectError && err.code === Code.Unavailable, String(err));
  assert.ok(isConnectionDrop(err));
  assert.match(err.message, /protocol error.*16384/);
  await server[Symbol.asyncDispose]();
  assert.equal(new DataView(goaway!.payload.buffer).getUint32(4), 6); // FRAME_SIZE_ERROR
});

Deno.test("h2: a header block HPACK cannot decode is a COMPRESSION_ERROR", async () => {
  let goaway: Frame | undefined;
  await using server = scripted(async (peer) => {
    await peer.handshake();
    await peer.expect(1);
    await peer.send(frame(1, 0x4, 1, [0xbf])); // index 63: nothing in the dynamic table
    goaway = await peer.expect(7);
  });
  using conn = dial(server.endpoint, "");
  const err = await conn.rpc.health({}).then(() => undefined, (e) => e);
  assert.ok(err instanceof ConnectError && err.code === Code.Unavailable, String(err));
  await server[Symbol.asyncDispose]();
  assert.equal(new DataView(goaway!.payload.buffer).getUint32(4), 9); // COMPRESSION_ERROR
});

Deno.test("h2: DATA never exceeds the daemon's windows or its frame size, and a PING is answered", async () => {
  const sizes: number[] = [];
  let pong: Frame | undefined;
  await using server = scripted(async (peer) => {
    await peer.handshake([[4, 100]]); // INITIAL_WINDOW_SIZE 100
    await peer.expect(1);
    let got = 0;
    while (got < 100) {
      const f = await peer.expect(0);
      sizes.push(f.payload.length);
      got += f.payload.length;
    }
    // Nothing more may come until the window opens: a PING must be answered first.
    await peer.send(frame(6, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8]));
    const next = await peer.frame();
    assert.equal(next?.type, 6, `frame type ${next?.type} before the window opened`);
    pong = next;
    const grant = new Uint8Array(4);
    new DataView(grant.buffer).setUint32(0, 100_000);
    await peer.send(frame(8, 0, 1, grant));
    while (got < 40_000) {
      const f = await peer.expect(0);
      sizes.push(f.payload.length);
      got += f.payload.length;
      if (f.flags & 1) break;
    }
    assert.equal(got, 40_000);
    await peer.send(frame(3, 0, 1, [0, 0, 0, 0]));
  });
  await using session = {
    s: await H2Session.connect("127.0.0.1", server.port),
    [Symbol.asyncDispose]() {
      this.s.close();
      return Promise.resolve();
    },
  };
  await session.s.handshake;
  const ended = Promise.withResolvers<number>();
  const handler: StreamHandler = {
    onHeaders: () => {},
    onData: () => {},
    onReset: (code) => ended.resolve(code),
    onError: (err) => ended.reject(err),
  };
  const block = encodeHeaderBlock([[":method", "POST"], [":path", "/x"]]);
  const { sent } = session.s.request(block, handler, new Uint8Array(40_000), true);
  assert.equal(await sent, true);
  assert.equal(await ended.promise, 0);
  assert.equal(sizes[0], 100);
  assert.ok(sizes.every((n) => n <= 16_384), `frames of ${sizes}`);
  assert.deepEqual([...pong!.payload], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(pong!.flags & 1, 1);
});

Deno.test("h2: a daemon's RST_STREAM CANCEL is the daemon's answer: CANCELED, never sent again", async () => {
  let requests = 0;
  await using server = scripted(async (peer) => {
    await peer.handshake();
    for (;;) {
      const f = await peer.frame();
      if (!f) return;
      if (f.type !== 1) continue;
      requests++;
      await peer.send(frame(3, 0, f.id, [0, 0, 0, 8])); // RST_STREAM CANCEL
    }
  });
  using conn = dial(server.endpoint, "");
  const node = new RemoteNode("scripted", conn, "llama");
  const err = await node.health({ timeoutMs: 5_000 }).then(() => undefined, (e) => e);
  assert.ok(err instanceof Error, "the call failed");
  assert.ok(!isUnprocessed(err), "a reset the daemon sent is not an unprocessed call");
  conn.close();
  await server[Symbol.asyncDispose]();
  assert.equal(requests, 1, "the call went out once");
});

Deno.test("grpc: a stream that ends after a message's prefix is an error, not a shorter success", async () => {
  await using server = scripted(async (peer) => {
    await peer.handshake();
    const req = await peer.expect(1);
    const ok = encodeHeaderBlock([[":status", "200"], ["content-type", CT]]);
    const trailers = encodeHeaderBlock([["grpc-status", "0"]]);
    await peer.send(
      frame(1, 0x4, req.id, ok),
      frame(0, 0, req.id, [...envelope('{"text":"a"}'), 0, 0, 0, 0, 10]), // a whole chunk, then a prefix
      frame(1, 0x5, req.id, trailers),
    );
    await peer.frame();
  });
  using conn = dial(server.endpoint, "");
  const texts: string[] = [];
  const err = await (async () => {
    for await (const delta of new Session(conn, "h1").decode({})) texts.push(delta.text);
  })().then(() => undefined, (e) => e);
  assert.deepEqual(texts, ["a"]);
  assert.ok(err instanceof Error, "the truncated message fails the stream");
  assert.match(String(err), /incomplete envelope/);
});

Deno.test("h2: a PING in flight fails when the connection closes (it does not wait for its timeout)", async () => {
  await using server = scripted(async (peer) => {
    await peer.handshake();
    await peer.expect(6); // the PING: close without answering
  });
  const session = await H2Session.connect("127.0.0.1", server.port);
  await session.handshake;
  await assert.rejects(session.ping());
  session.close();
});

Deno.test("h2: END_STREAM alone goes out as an empty DATA frame even when the window is below zero", async () => {
  let last: Frame | undefined;
  await using server = scripted(async (peer) => {
    await peer.handshake([[4, 100]]);
    await peer.expect(1);
    assert.equal((await peer.expect(0)).payload.length, 100);
    // Lower every stream's window by 100: this one's goes to -100.
    const settings = new Uint8Array(6);
    new DataView(settings.buffer).setUint16(0, 4);
    new DataView(settings.buffer).setUint32(2, 0);
    await peer.send(frame(4, 0, 0, settings));
    last = await peer.expect(0);
    await peer.send(frame(3, 0, 1, [0, 0, 0, 0]));
  });
  const session = await H2Session.connect("127.0.0.1", server.port);
  await session.handshake;
  const ended = Promise.withResolvers<void>();
  const { stream, sent } = session.request(
    encodeHeaderBlock([[":method", "POST"], [":path", "/x"]]),
    {
      onHeaders: () => {},
      onData: () => {},
      onReset: () => ended.resolve(),
      onError: ended.reject,
    },
    new Uint8Array(100),
    false,
  );
  await sent;
  await new Promise((r) => setTimeout(r, 50)); // the SETTINGS arrives
  assert.equal(await stream.write(new Uint8Array(0), true), true);
  await ended.promise;
  session.close();
  assert.equal(last?.payload.length, 0);
  assert.equal(last!.flags & 1, 1);
});

Deno.test("h2: a response written one byte at a time is read as one (frames across reads)", async () => {
  await using server = scripted(async (peer) => {
    await peer.handshake();
    const req = await peer.expect(1);
    const bytes = [
      ...frame(1, 0x4, req.id, encodeHeaderBlock([[":status", "200"], ["content-type", CT]])),
      ...frame(0, 0, req.id, envelope(HEALTH_JSON)),
      ...frame(1, 0x5, req.id, encodeHeaderBlock([["grpc-status", "0"]])),
    ];
    for (const b of bytes) {
      await peer.conn.write(new Uint8Array([b]));
      await new Promise((r) => setTimeout(r, 0));
    }
    await peer.frame();
  });
  using conn = dial(server.endpoint, "");
  assert.equal((await conn.rpc.health({})).instanceId, "i-1");
});

Deno.test("h2: resetting the last open stream leaves the session idle (unref'd, onIdle called), as every other stream end does", async () => {
  // Cancelling the only call (a Decode left early) reset its stream without
  // the idle check: the socket stayed ref'd, so a script could not exit, and
  // a session draining after GOAWAY was never closed.
  await using server = scripted(async (peer) => {
    await peer.handshake();
    while (await peer.frame()); // until the client closes
  });
  const session = await H2Session.connect("127.0.0.1", server.port);
  await session.handshake;
  let idle = 0;
  session.onIdle = () => idle++;
  const { stream } = session.request(
    encodeHeaderBlock([[":method", "POST"], [":path", "/x"]]),
    { onHeaders: () => {}, onData: () => {}, onReset: () => {}, onError: () => {} },
  );
  try {
    assert.equal(session.openStreams, 1);
    stream.reset(8);
    assert.equal(session.openStreams, 0);
    assert.equal(idle, 1, "the reset stream ended like any other: onIdle ran");
  } finally {
    session.close();
  }
});
