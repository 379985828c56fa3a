/**
 * Tests for tools/zip.ts. The zip files are written here, in TypeScript (a
 * tiny zip writer: local headers, data, central directory, end record), with
 * one stored and one deflated (`CompressionStream("deflate-raw")`) entry, so
 * the tests need nothing but Deno.
 *
 * Permissions: `--allow-read` and `--allow-write` on the system temp
 * directory (`$TMPDIR`), e.g.
 *
 * ```sh
 * mkdir -p .cache/tmp/zip && TMPDIR=$PWD/.cache/tmp/zip deno test \
 *   --allow-read=.cache/tmp/zip --allow-write=.cache/tmp/zip tools/zip_test.ts
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { crc32, extractZipMember, ZipError } from "./zip.ts";

interface Entry {
  name: string;
  data: Uint8Array;
  method: 0 | 8;
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("deflate-raw"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The bytes of a zip file holding `entries`, as a real zip writer would lay them out. */
async function buildZip(entries: Entry[]): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = e.method === 8 ? await deflateRaw(e.data) : e.data;
    const crc = crc32(0, e.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true); // version needed
    lv.setUint16(6, 0x0800, true); // UTF-8 names
    lv.setUint16(8, e.method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const cd = new Uint8Array(46 + name.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true); // version made by
    cv.setUint16(6, 20, true); // version needed
    cv.setUint16(8, 0x0800, true);
    cv.setUint16(10, e.method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    cd.set(name, 46);
    parts.push(local, body);
    central.push(cd);
    offset += local.length + body.length;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, eocd];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let p = 0;
  for (const part of all) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Deterministic, mostly incompressible bytes (xorshift32), so the deflated entry spans several reads. */
function noise(length: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = i % 7 === 0 ? 0x41 : x & 0xff;
  }
  return out;
}

const STORED = new TextEncoder().encode("hello, stored entry\n".repeat(100));
const DEFLATED = noise(2_500_000 + 17);
const STORED_NAME = "pkg/readme.txt";
const DEFLATED_NAME = "pkg/model.bin";

async function withZip(
  bytes: Uint8Array,
  fn: (zipPath: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zip_test_" });
  try {
    const zipPath = join(dir, "test.whl");
    await Deno.writeFile(zipPath, bytes);
    await fn(zipPath, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function goodZip(): Promise<Uint8Array> {
  return await buildZip([
    { name: STORED_NAME, data: STORED, method: 0 },
    { name: DEFLATED_NAME, data: DEFLATED, method: 8 },
  ]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

Deno.test("crc32 matches the standard check value and composes over chunks", () => {
  const bytes = new TextEncoder().encode("123456789");
  assert.equal(crc32(0, bytes), 0xcbf43926);
  assert.equal(crc32(crc32(0, bytes.subarray(0, 4)), bytes.subarray(4)), 0xcbf43926);
  assert.equal(crc32(0, new Uint8Array()), 0);
});

Deno.test("extractZipMember writes a stored entry and returns its size and SHA-256", async () => {
  await withZip(await goodZip(), async (zipPath, dir) => {
    const out = join(dir, "readme.txt");
    const r = await extractZipMember(zipPath, STORED_NAME, out);
    assert.deepEqual(r, { size: STORED.length, sha256: sha256(STORED) });
    assert.deepEqual(await Deno.readFile(out), STORED);
  });
});

Deno.test("extractZipMember inflates a multi-megabyte deflated entry", async () => {
  const zip = await goodZip();
  // The deflated body must span several 1 MiB reads for this test to cover streaming.
  assert.ok(zip.length > 2 * 1024 * 1024, `zip is only ${zip.length} bytes`);
  await withZip(zip, async (zipPath, dir) => {
    const out = join(dir, "model.bin");
    await Deno.writeFile(out, new Uint8Array(10_000_000)); // an old, longer file is truncated
    const r = await extractZipMember(zipPath, DEFLATED_NAME, out);
    assert.deepEqual(r, { size: DEFLATED.length, sha256: sha256(DEFLATED) });
    assert.ok((await Deno.readFile(out)).every((b, i) => b === DEFLATED[i]));
    assert.equal((await Deno.stat(out)).size, DEFLATED.length);
  });
});

Deno.test("extractZipMember names the missing member and lists what the archive has", async () => {
  await withZip(await goodZip(), async (zipPath, dir) => {
    const out = join(dir, "nope");
    await assert.rejects(
      extractZipMember(zipPath, "pkg/nope.bin", out),
      (err: unknown) => {
        assert.ok(err instanceof ZipError);
        assert.match(err.message, /has no member "pkg\/nope\.bin"/);
        assert.match(err.message, /pkg\/readme\.txt, pkg\/model\.bin/);
        return true;
      },
    );
    assert.equal(await exists(out), false);
  });
});

Deno.test("extractZipMember rejects a file that is not a zip", async () => {
  await withZip(new TextEncoder().encode("<html>Not Found</html>\n".repeat(10)), async (p, dir) => {
    await assert.rejects(
      extractZipMember(p, STORED_NAME, join(dir, "out")),
      (err: unknown) => err instanceof ZipError && /not a readable zip file/.test(err.message),
    );
  });
});

Deno.test("extractZipMember rejects a truncated zip", async () => {
  const zip = await goodZip();
  await withZip(zip.subarray(0, zip.length - 100), async (p, dir) => {
    await assert.rejects(
      extractZipMember(p, STORED_NAME, join(dir, "out")),
      (err: unknown) => err instanceof ZipError && /not a readable zip file/.test(err.message),
    );
  });
});

Deno.test("extractZipMember detects corrupt stored data by its CRC-32 and removes the output", async () => {
  const zip = await goodZip();
  zip[30 + STORED_NAME.length + 5] ^= 0xff; // a byte inside the stored body
  await withZip(zip, async (p, dir) => {
    const out = join(dir, "out");
    await assert.rejects(
      extractZipMember(p, STORED_NAME, out),
      (err: unknown) => err instanceof ZipError && /fails its CRC-32 check/.test(err.message),
    );
    assert.equal(await exists(out), false);
  });
});

Deno.test("extractZipMember rejects corrupt deflate data and removes the output", async () => {
  const zip = await goodZip();
  const bodyStart = 30 + STORED_NAME.length + STORED.length + 30 + DEFLATED_NAME.length;
  zip.fill(0xff, bodyStart + 1000, bodyStart + 1100);
  await withZip(zip, async (p, dir) => {
    const out = join(dir, "out");
    await assert.rejects(
      extractZipMember(p, DEFLATED_NAME, out),
      (err: unknown) => err instanceof ZipError && /corrupt/.test(err.message),
    );
    assert.equal(await exists(out), false);
  });
});

Deno.test("extractZipMember refuses zip64 archives instead of misreading them", async () => {
  const zip = await goodZip();
  const ev = new DataView(zip.buffer, zip.length - 22);
  ev.setUint16(8, 0xffff, true);
  ev.setUint16(10, 0xffff, true);
  await withZip(zip, async (p, dir) => {
    await assert.rejects(
      extractZipMember(p, STORED_NAME, join(dir, "out")),
      (err: unknown) => err instanceof ZipError && /zip64/.test(err.message),
    );
  });
});
