import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MAX_FRAME_BYTES, pushFrames, rechunk, sha256Hex } from "./push.ts";

const manifest = { name: "m", type: "llama", format: "file" };

Deno.test("frames are at most 4 MiB, manifest on the first frame only, bytes in order", async () => {
  const bytes = new Uint8Array(MAX_FRAME_BYTES * 2 + 123).map((_, i) => i % 251);
  const frames = [];
  const progress: number[] = [];
  const onProgress = (p: { sentBytes: number }) => progress.push(p.sentBytes);
  for await (const f of pushFrames(bytes, manifest, { ownerInstanceId: "owner", onProgress })) {
    frames.push(f);
  }
  assert.deepEqual(frames.map((f) => f.data?.length), [
    undefined,
    MAX_FRAME_BYTES,
    MAX_FRAME_BYTES,
    123,
  ]);
  assert.equal(frames[0].manifest?.name, "m");
  assert.equal(frames[0].ownerInstanceId, "owner");
  assert.ok(frames.slice(1).every((f) => f.manifest === undefined));
  const joined = new Uint8Array(bytes.length);
  let o = 0;
  for (const f of frames.slice(1)) {
    joined.set(f.data!, o);
    o += f.data!.length;
  }
  assert.deepEqual(joined, bytes);
  assert.deepEqual(progress, [MAX_FRAME_BYTES, 2 * MAX_FRAME_BYTES, bytes.length]);
});

Deno.test("the manifest goes out before the source yields anything", async () => {
  let pulled = false;
  const slow = (async function* () {
    pulled = true;
    yield new Uint8Array(1);
  })();
  const frames = pushFrames(slow, manifest);
  const first = await frames.next();
  assert.equal(first.value?.manifest?.name, "m");
  assert.equal(pulled, false, "no data was awaited for the first frame");
  await frames.return(undefined);
});

Deno.test("an empty model still sends one frame with its manifest", async () => {
  const frames = [];
  for await (const f of pushFrames(new Uint8Array(), manifest)) frames.push(f);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].manifest?.name, "m");
});

Deno.test("rechunk joins small stream pieces and splits large ones", async () => {
  const stream = ReadableStream.from([new Uint8Array(3), new Uint8Array(3), new Uint8Array(9)]);
  const sizes = [];
  for await (const p of rechunk(stream, 4)) sizes.push(p.length);
  assert.deepEqual(sizes, [4, 4, 4, 3]);
});

Deno.test("sha256Hex agrees with node:crypto for bytes and streams", async () => {
  const bytes = new TextEncoder().encode("weights-a");
  const want = createHash("sha256").update(bytes).digest("hex");
  assert.equal(await sha256Hex(bytes), want);
  assert.equal(
    await sha256Hex(ReadableStream.from([bytes.subarray(0, 4), bytes.subarray(4)])),
    want,
  );
});
