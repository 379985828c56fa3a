/**
 * The client against the real daemon, `modeld serve` v0.36.0 built without
 * backend tags ("none" backend): discovery through the lease (running, gone
 * after SIGTERM, unreachable then stale after SIGKILL, taken over by a second
 * daemon), the daemon's own errors, and its fully functional model store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  available,
  backend,
  ConnectionError,
  DaemonInternalError,
  DaemonNotInstalledError,
  DaemonNotRunningError,
  DaemonStaleError,
  DaemonUnreachableError,
  detect,
  DigestMismatchError,
  ModeldClient,
  ModelLoadFailedError,
  ModelNotFoundError,
  probe,
  type PushProgress,
  readLease,
  serveableBackend,
  SessionClosedError,
  setDataRoot,
  StaleFenceError,
  UnsupportedModelTypeError,
} from "../../mod.ts";
import { Session } from "../../lib/session.ts";
import { dial } from "../../lib/transport.ts";
import { binPath, PEER_VERSION, startModeld, tempDataRoot, waitFor } from "./peers.ts";

const T = `[modeld ${PEER_VERSION}]`;
const MODELD_BIN = binPath(`modeld-${PEER_VERSION}`);
const NO_BACKEND = "modeld: no local inference backend compiled in this build";

/** Runs `fn` with `$CONTENOX_MODELD_BIN` set, restoring it afterwards. */
async function withModeldBin<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const before = Deno.env.get("CONTENOX_MODELD_BIN");
  Deno.env.set("CONTENOX_MODELD_BIN", value);
  try {
    return await fn();
  } finally {
    if (before === undefined) Deno.env.delete("CONTENOX_MODELD_BIN");
    else Deno.env.set("CONTENOX_MODELD_BIN", before);
  }
}

/** Runs `fn` with the module-level data root set to `root`, reset afterwards. */
async function withDataRoot<T>(root: string, fn: () => Promise<T>): Promise<T> {
  setDataRoot(root);
  try {
    return await fn();
  } finally {
    setDataRoot("");
  }
}

/**
 * The lease's renewal time, written by Go in the daemon's local zone with
 * nanoseconds, parses to (about) now.
 */
async function assertLeaseTimeIsNow(root: string): Promise<void> {
  const lease = await readLease(root);
  assert.ok(lease, "a lease");
  const skew = Math.abs(lease.renewedAt.getTime() - Date.now());
  assert.ok(skew < 15_000, `renewed_at ${lease.renewedAtText} parsed ${skew} ms away from now`);
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test(`${T} discovery: running, then not running after SIGTERM`, async () => {
  await using root = await tempDataRoot();
  await withModeldBin(MODELD_BIN, () =>
    withDataRoot(root.path, async () => {
      // A zone west of UTC: a lease time read as UTC would look expired.
      await using daemon = await startModeld({
        dataRoot: root.path,
        env: { TZ: "America/St_Johns" },
      });
      await assertLeaseTimeIsNow(root.path);
      assert.equal(await available(), true);
      assert.equal(await backend(), "none");
      assert.equal(await serveableBackend(), "none");

      const found = await detect();
      assert.equal(found.state, "running");
      assert.equal(found.dataRoot, root.path);
      assert.equal(found.endpoint, daemon.endpoint);
      assert.equal(found.instanceId, daemon.instanceId);
      assert.equal(found.backend, "none");
      assert.equal(found.binary, MODELD_BIN);
      assert.equal(found.binarySource, "env");
      assert.deepEqual(found.skipped, []);

      const p = await probe({ timeoutMs: 5_000 });
      assert.equal(p.state, "running");
      assert.equal(p.error, undefined);
      assert.equal(p.health?.ready, true);
      assert.equal(p.health?.instanceId, daemon.instanceId);
      assert.equal(p.health?.backend, "none");

      await using client = new ModeldClient(); // the module-level data root
      assert.equal(await client.localEndpointAddr(), daemon.endpoint);
      assert.equal((await client.health()).instanceId, daemon.instanceId);

      const status = await daemon.terminate();
      assert.equal(status.code, 0);
      assert.ok(daemon.stdout.some((l) => l.startsWith("modeld owner stopped: ")));
      assert.equal(await readLease(root.path), undefined, "SIGTERM removes the lease");
      assert.equal(await available(), false);
      assert.equal(await backend(), "");
      assert.equal(
        await serveableBackend(),
        "none",
        "the backend stays advertised for a grace period",
      );
      const gone = await probe();
      assert.equal(gone.state, "not_running");
      assert.ok(gone.error instanceof DaemonNotRunningError);
      assert.equal(gone.binary, MODELD_BIN);
      await assert.rejects(() => client.health(), DaemonNotRunningError);
    }));
});

Deno.test(`${T} discovery: no lease and no binary is not_installed`, async () => {
  await using root = await tempDataRoot();
  await withModeldBin(join(root.path, "no-such-modeld"), async () => {
    const found = await detect({ dataRoot: root.path });
    assert.equal(found.state, "not_installed");
    const p = await probe({ dataRoot: root.path });
    assert.equal(p.state, "not_installed");
    assert.ok(p.error instanceof DaemonNotInstalledError);
    // A live lease wins over a missing binary.
    await using _daemon = await startModeld({ dataRoot: root.path });
    assert.equal((await probe({ dataRoot: root.path })).state, "running");
  });
});

Deno.test(`${T} SIGKILL: unreachable while the lease lives, stale after its TTL, taken over by a new daemon`, async () => {
  await using root = await tempDataRoot();
  await withModeldBin(MODELD_BIN, async () => {
    // A zone east of UTC: a lease time read as UTC would never expire here.
    await using first = await startModeld({
      dataRoot: root.path,
      ttl: "2s",
      env: { TZ: "Asia/Kathmandu" },
    });
    await assertLeaseTimeIsNow(root.path);
    await using client = new ModeldClient({ dataRoot: root.path });
    const before = await client.status();
    assert.equal(before.ownerInstanceId, first.instanceId);

    await first.kill();
    const lease = await readLease(root.path);
    assert.equal(lease?.instanceId, first.instanceId, "a crash leaves the lease behind");
    const unreachable = await probe({ dataRoot: root.path, timeoutMs: 2_000 });
    assert.equal(unreachable.state, "unreachable");
    assert.ok(unreachable.error instanceof DaemonUnreachableError);
    assert.equal(unreachable.endpoint, first.endpoint);
    assert.equal((await detect({ dataRoot: root.path })).state, "running", "detect stays offline");
    // The client's connection to the dead instance fails as a connection error.
    const err = await client.status({ timeoutMs: 2_000 }).catch((e) => e);
    assert.ok(err instanceof ConnectionError, String(err));

    await waitFor(
      async () => (await detect({ dataRoot: root.path })).state === "stale" || undefined,
      5_000,
      "the lease to expire",
    );
    assert.ok(Date.now() >= (lease?.expiresAt.getTime() ?? 0));
    const stale = await probe({ dataRoot: root.path });
    assert.equal(stale.state, "stale");
    assert.equal(stale.instanceId, first.instanceId);
    assert.ok(stale.error instanceof DaemonStaleError);
    await assert.rejects(() => client.status(), DaemonStaleError);

    await using second = await startModeld({ dataRoot: root.path });
    assert.notEqual(second.instanceId, first.instanceId);
    const after = await client.status();
    assert.equal(after.ownerInstanceId, second.instanceId, "the client re-dialled the new owner");
    assert.equal((await probe({ dataRoot: root.path })).state, "running");
  });
});

Deno.test(`${T} a graceful restart: the client follows the lease to the new instance`, async () => {
  await using root = await tempDataRoot();
  await using first = await startModeld({ dataRoot: root.path });
  await using client = new ModeldClient({ dataRoot: root.path });
  assert.equal((await client.status()).ownerInstanceId, first.instanceId);
  await first.terminate();
  // Same address, new instance: a stale connection would be refused the fence.
  await using second = await startModeld({ dataRoot: root.path, listen: first.endpoint });
  assert.equal(second.endpoint, first.endpoint);
  assert.equal((await client.status()).ownerInstanceId, second.instanceId);
  assert.equal((await client.health()).instanceId, second.instanceId);
});

Deno.test(`${T} the daemon's errors arrive typed`, async () => {
  await using daemon = await startModeld();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });

  const empty = await client.status();
  assert.equal(empty.state, "Empty");
  assert.equal(empty.backend, "none");
  assert.equal(empty.ownerInstanceId, daemon.instanceId);

  const withPath = { name: "m", type: "llama", path: "/models/m.gguf" };
  const load = await client.openSession(withPath).catch((e) => e);
  assert.ok(load instanceof ModelLoadFailedError, String(load));
  assert.equal(load.grpcCode, 13);
  assert.ok(load.detail.includes(NO_BACKEND), load.detail);
  const failed = await client.status();
  assert.equal(failed.state, "Failed");
  assert.ok(failed.lastError.includes(NO_BACKEND), failed.lastError);
  await assert.rejects(() => client.loadModel(withPath), ModelLoadFailedError);

  const describe = await client.describe(withPath).catch((e) => e);
  assert.ok(describe instanceof DaemonInternalError, String(describe));
  assert.equal(describe.grpcCode, 13);
  assert.equal(describe.rpc, "Describe");
  assert.ok(describe.detail.startsWith(`internal: ${NO_BACKEND}`), describe.detail);
  await assert.rejects(() => client.embed(withPath, "x"), DaemonInternalError);

  const notFound = await client.openSession({ name: "absent", type: "llama" }).catch((e) => e);
  assert.ok(notFound instanceof ModelNotFoundError, String(notFound));
  assert.equal(notFound.grpcCode, 5);
  await assert.rejects(
    () => client.describe({ name: "absent", type: "llama" }),
    ModelNotFoundError,
  );
  // The client defaults the type from the lease's backend; an explicit "" is sent as is.
  const badType = await client.openSession({ name: "m", type: "" }).catch((e) => e);
  assert.ok(badType instanceof UnsupportedModelTypeError, String(badType));
  assert.equal(badType.grpcCode, 3);
  await assert.rejects(
    () => client.openSession({ name: "m", type: "ollama" }),
    UnsupportedModelTypeError,
  );
  await client.unloadModel(); // an empty or failed slot is fine

  // The "none" daemon can never hold a session: a foreign handle is
  // stale_fence, one of its own is closed.
  await using conn = dial(daemon.endpoint, daemon.instanceId);
  await assert.rejects(
    () => new Session(conn, "someone-else/1/1").ensurePrefix({ text: "x" }),
    StaleFenceError,
  );
  // ExplainContext never throws, as in Go: any error reads as closed.
  assert.equal((await new Session(conn, "someone-else/1/1").explainContext()).closed, true);
  await assert.rejects(
    () => new Session(conn, `${daemon.instanceId}/1/1`).ensurePrefix({ text: "x" }),
    SessionClosedError,
  );
});

Deno.test(`${T} a remote node restarted on the same address: stale_fence, then endpoint() re-dials`, async () => {
  await using first = await startModeld();
  await using client = new ModeldClient({ dataRoot: first.dataRoot });
  const node = await client.endpoint("gpu-box", first.endpoint);
  assert.deepEqual([node.instanceId, node.backend, node.ready], [first.instanceId, "none", true]);
  assert.equal(await client.endpoint("gpu-box", first.endpoint), node, "cached while unchanged");
  assert.equal((await node.status()).ownerInstanceId, first.instanceId);
  await first.terminate();
  await using second = await startModeld({ listen: first.endpoint });
  // The cached node is fenced with the old instance: the new one refuses it,
  // admin RPCs included (PushModel after its frames were sent).
  await assert.rejects(() => node.status(), StaleFenceError);
  await assert.rejects(() => node.listModels(), StaleFenceError);
  await assert.rejects(() => node.removeModel("m"), StaleFenceError);
  await assert.rejects(() => node.diskStats(), StaleFenceError);
  await assert.rejects(() => node.pushModel(new Uint8Array(1024), { name: "m" }), StaleFenceError);
  await assert.rejects(() => node.describe({ name: "m", type: "llama" }), StaleFenceError);
  const again = await client.endpoint("gpu-box", first.endpoint);
  assert.notEqual(again, node);
  assert.equal(again.instanceId, second.instanceId);
  assert.equal((await again.status()).ownerInstanceId, second.instanceId);
  client.closeEndpoint("gpu-box");
  client.closeEndpoint("gpu-box"); // idempotent
  await second.terminate();
  await assert.rejects(() => client.endpoint("gpu-box", first.endpoint), DaemonUnreachableError);
});

Deno.test(`${T} model store: push 16 MiB, list, idempotent push, digest mismatch, remove, disk stats`, async () => {
  await using daemon = await startModeld();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  assert.deepEqual(await client.listModels(), []);

  const bytes = new Uint8Array(16 << 20);
  for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (i >> 12) & 0xff;
  bytes[bytes.length - 1] = 0xff;
  const digest = await sha256Hex(bytes);
  const progress: PushProgress[] = [];
  const pushed = await client.pushModel(bytes, {
    name: "big",
    onProgress: (p) => progress.push({ ...p }),
  });
  assert.equal(pushed.alreadyPresent, false);
  assert.equal(pushed.bytesWritten, 16777216n);
  assert.ok(progress.length >= 4, `${progress.length} frames`);
  assert.ok(progress.every((p, i) => i === 0 || p.sentBytes > progress[i - 1].sentBytes));
  assert.deepEqual(progress.at(-1), { sentBytes: 16777216, totalBytes: 16777216 });
  const stored = await Deno.readFile(join(daemon.dataRoot, "models", "big", "model.gguf"));
  assert.equal(await sha256Hex(stored), digest, "stored byte for byte");

  const [listed] = await client.listModels();
  assert.deepEqual(
    [listed.name, listed.type, listed.digest, listed.sizeBytes],
    ["big", "llama", digest, 16777216n],
  );
  const again = await client.pushModel(bytes, { name: "big" });
  assert.equal(again.alreadyPresent, true);

  const mismatch = await client.pushModel(new Uint8Array([1, 2, 3]), {
    name: "bad",
    digest: "0".repeat(64),
  }).catch((e) => e);
  assert.ok(mismatch instanceof DigestMismatchError, String(mismatch));
  assert.deepEqual((await client.listModels()).map((m) => m.name), ["big"]);

  // A stored model is found by name: the load then fails on the missing backend.
  await assert.rejects(
    () => client.openSession({ name: "big", type: "llama" }),
    ModelLoadFailedError,
  );

  const started = performance.now();
  await assert.rejects(
    () => client.pushModel(new Uint8Array(1 << 20), { name: "x", type: "ollama" }),
    UnsupportedModelTypeError,
  );
  assert.ok(performance.now() - started < 10_000);

  await client.removeModel("big");
  assert.deepEqual(await client.listModels(), []);
  await assert.rejects(() => client.removeModel("big"), ModelNotFoundError);
  const disk = await client.diskStats();
  assert.ok(disk.totalBytes > 0n);
  assert.ok(disk.freeBytes <= disk.totalBytes);
});

Deno.test(`${T} model store: pushModelFile streams a file from disk`, async () => {
  await using daemon = await startModeld();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await using dir = await tempDataRoot();
  const path = join(dir.path, "tiny.gguf");
  const bytes = Uint8Array.from({ length: (5 << 20) + 3 }, (_, i) => (i * 31) & 0xff);
  await Deno.writeFile(path, bytes);
  const progress: number[] = [];
  const res = await client.pushModelFile(path, {
    name: "tiny",
    onProgress: (p) => progress.push(p.sentBytes),
  });
  assert.equal(res.bytesWritten, BigInt(bytes.length));
  assert.deepEqual(progress, [4 << 20, bytes.length]);
  const [m] = await client.listModels();
  assert.deepEqual([m.name, m.digest, m.sizeBytes], [
    "tiny",
    await sha256Hex(bytes),
    BigInt(bytes.length),
  ]);
  assert.equal((await client.pushModelFile(path, { name: "tiny" })).alreadyPresent, true);
});

Deno.test(`${T} probe: a lease naming another instance than the one answering is unreachable`, async () => {
  await using daemon = await startModeld();
  await using root = await tempDataRoot();
  // Copy the live lease with a different instance id into another data root.
  const lease = JSON.parse(await Deno.readTextFile(join(daemon.dataRoot, "modeld.lease")));
  lease.instance_id = "00000000-0000-4000-8000-000000000000";
  await Deno.writeTextFile(join(root.path, "modeld.lease"), JSON.stringify(lease, null, 2));
  const p = await probe({ dataRoot: root.path });
  assert.equal(p.state, "unreachable");
  assert.ok(p.error instanceof DaemonUnreachableError);
  assert.equal(p.health?.instanceId, daemon.instanceId);
  assert.match(p.error.message, /names 00000000-0000-4000-8000-000000000000|00000000/);
  await using client = new ModeldClient({ dataRoot: root.path });
  await assert.rejects(() => client.status(), DaemonUnreachableError);
});

Deno.test(`${T} a second daemon on a held data root exits as a follower`, async () => {
  await using owner = await startModeld();
  const err = await startModeld({ dataRoot: owner.dataRoot }).catch((e) => e);
  assert.ok(err instanceof Error);
  assert.match(err.message, /modeld follower: reason=lease_held/);
  assert.match(err.message, new RegExp(`holder_instance=${owner.instanceId}`));
  await using client = new ModeldClient({ dataRoot: owner.dataRoot });
  assert.equal((await client.status()).ownerInstanceId, owner.instanceId);
});

Deno.test(`${T} model store: models placed on disk, stream sources, names and errors`, async () => {
  await using daemon = await startModeld();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  await Deno.mkdir(join(daemon.dataRoot, "models", "a"), { recursive: true });
  await Deno.writeTextFile(join(daemon.dataRoot, "models", "a", "model.gguf"), "weights-a");
  const [a] = await client.listModels();
  assert.deepEqual([a.name, a.type, a.sizeBytes], ["a", "llama", 9n]);
  assert.notEqual(a.digest, "");

  // A ReadableStream in uneven pieces, with the digest asserted.
  const bytes = Uint8Array.from({ length: (6 << 20) + 5 }, (_, i) => (i * 7) & 0xff);
  const digest = await sha256Hex(bytes);
  const pieces = [
    bytes.subarray(0, 3 << 20),
    bytes.subarray(3 << 20, 6 << 20),
    bytes.subarray(6 << 20),
  ];
  const stream = ReadableStream.from(pieces);
  const sent: number[] = [];
  const res = await client.pushModel(stream, {
    name: "streamed",
    digest,
    totalBytes: bytes.length,
    onProgress: (p) => sent.push(p.sentBytes),
  });
  assert.equal(res.bytesWritten, BigInt(bytes.length));
  assert.deepEqual(sent, [4 << 20, bytes.length], "re-framed into 4 MiB frames");
  // An async iterable without a digest: the daemon stores it unverified.
  async function* gen() {
    yield new Uint8Array([1, 2, 3]);
    yield new Uint8Array([4]);
  }
  assert.equal((await client.pushModel(gen(), { name: "iter" })).bytesWritten, 4n);
  const bad = await client.pushModel(ReadableStream.from([new Uint8Array([9])]), {
    name: "bad-stream",
    digest,
  }).catch((e) => e);
  assert.ok(bad instanceof DigestMismatchError, String(bad));
  const listed = Object.fromEntries((await client.listModels()).map((m) => [m.name, m]));
  assert.deepEqual(Object.keys(listed).sort(), ["a", "iter", "streamed"]);
  assert.equal(listed.streamed.digest, digest);

  // Non-ASCII names are stored and listed as sent; errors keep non-ASCII text
  // intact through the percent-encoded grpc-message header.
  const name = "日本語 é 🚀 <&>";
  const missing = await client.openSession({ name, type: "llama" }).catch((e) => e);
  assert.ok(missing instanceof ModelNotFoundError, String(missing));
  assert.equal(missing.detail, `model not found in modeld's local store: ${name} (llama)`);
  const badType = await client.openSession({ name: "m", type: name }).catch((e) => e);
  assert.ok(badType instanceof UnsupportedModelTypeError, String(badType));
  assert.equal(badType.detail, `unsupported model backend type: "${name}"`);
  await client.pushModel(new Uint8Array([1, 2, 3]), { name });
  assert.ok((await client.listModels()).some((m) => m.name === name && m.sizeBytes === 3n));
  await client.removeModel(name);
  // A name with a path separator is refused by the store, not written outside it.
  await assert.rejects(
    () => client.pushModel(new Uint8Array(3), { name: "../evil" }),
    DaemonInternalError,
  );
});

/** A minimal ustar archive of regular files (what `format: "tar"` pushes). */
function tar(files: Record<string, Uint8Array>): Uint8Array<ArrayBuffer> {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const [name, data] of Object.entries(files)) {
    const h = new Uint8Array(512);
    const put = (off: number, text: string) => h.set(enc.encode(text), off);
    const octal = (off: number, len: number, n: number) =>
      put(off, n.toString(8).padStart(len - 1, "0") + "\0");
    put(0, name);
    octal(100, 8, 0o644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, data.length);
    octal(136, 12, 1_700_000_000);
    put(156, "0");
    put(257, "ustar\0");
    put(263, "00");
    h.fill(0x20, 148, 156); // checksum field counts as spaces
    const sum = h.reduce((a, b) => a + b, 0);
    put(148, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

Deno.test(`${T} model store: an OpenVINO model directory pushed as a tar`, async () => {
  await using daemon = await startModeld();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const xml = new TextEncoder().encode("<?xml version='1.0'?><net name='日本'/>");
  const bin = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 13) & 0xff);
  const archive = tar({ "openvino_model.xml": xml, "openvino_model.bin": bin });
  const res = await client.pushModel(archive, { name: "ov", type: "openvino", format: "tar" });
  assert.equal(res.bytesWritten, BigInt(archive.length), "the raw tar stream is counted");
  const [m] = await client.listModels();
  assert.deepEqual(
    [m.name, m.type, m.sizeBytes],
    ["ov", "openvino", BigInt(xml.length + bin.length)],
  );
  const dir = join(daemon.dataRoot, "models", "ov");
  assert.deepEqual(await Deno.readFile(join(dir, "openvino_model.xml")), xml);
  assert.deepEqual(await Deno.readFile(join(dir, "openvino_model.bin")), bin);
});

Deno.test(`${T} model store: a second push of the same name while one streams is refused`, async () => {
  await using daemon = await startModeld();
  await using client = new ModeldClient({ dataRoot: daemon.dataRoot });
  const bytes = Uint8Array.from({ length: 6 << 20 }, (_, i) => i & 0xff);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  async function* slow() {
    yield bytes.subarray(0, 4 << 20); // one full frame, then hold the stream open
    await gate;
    yield bytes.subarray(4 << 20);
  }
  const first = client.pushModel(slow(), { name: "dup", digest: await sha256Hex(bytes) })
    .then((res) => ({ res }), (err) => ({ err }));
  try {
    const models = join(daemon.dataRoot, "models");
    await waitFor(
      async () => {
        try {
          for await (const e of Deno.readDir(models)) {
            if (e.name.startsWith(".staging-dup-")) return true;
          }
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
        return undefined;
      },
      5_000,
      "the first push to be staged",
    );
    // Other calls share the connection meanwhile.
    assert.deepEqual(await client.listModels(), []);
    const second = await client.pushModel(bytes, { name: "dup" }).catch((e) => e);
    assert.ok(second instanceof DaemonInternalError, String(second));
    assert.match(second.detail, /push already in progress for "dup"/);
  } finally {
    release();
  }
  const done = await first;
  assert.ok("res" in done, String("err" in done && done.err));
  assert.equal(done.res.bytesWritten, BigInt(bytes.length));
  assert.equal((await client.pushModel(bytes, { name: "dup" })).alreadyPresent, true);
});
