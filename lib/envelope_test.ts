import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";
import { envelopeOf, EnvelopeSplitter, EnvelopeTooLargeError } from "./envelope.ts";

/** A deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

Deno.test("EnvelopeSplitter: any chunking of a stream gives back the same messages, in order", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const random = rng(seed);
    const messages: { flags: number; payload: Uint8Array }[] = [];
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 1 + Math.floor(random() * 20); i++) {
      const size = random() < 0.2 ? 0 : Math.floor(random() * (random() < 0.1 ? 5000 : 40));
      const payload = Uint8Array.from({ length: size }, () => Math.floor(random() * 256));
      const flags = random() < 0.1 ? 1 : 0;
      messages.push({ flags, payload });
      parts.push(envelopeOf(payload, flags));
    }
    const stream = concatBytes(parts);
    const got: { flags: number; payload: Uint8Array }[] = [];
    const splitter = new EnvelopeSplitter(1 << 20);
    for (let at = 0; at < stream.length;) {
      const n = Math.min(
        stream.length - at,
        1 + Math.floor(random() * (random() < 0.5 ? 8 : 3000)),
      );
      // A copy, as the transport hands over: the splitter may keep views of it.
      splitter.push(
        stream.slice(at, at + n),
        (flags, data) => got.push({ flags, payload: data.slice() }),
      );
      at += n;
    }
    assert.equal(splitter.buffered, 0, `seed ${seed}`);
    assert.deepEqual(got, messages, `seed ${seed}`);
  }
});

Deno.test("EnvelopeSplitter: a prefix above the limit is refused before its payload arrives; a tail stays buffered", () => {
  const splitter = new EnvelopeSplitter(10);
  const seen: number[] = [];
  splitter.push(envelopeOf(new Uint8Array(3)), (_f, d) => seen.push(d.length));
  assert.deepEqual(seen, [3]);
  assert.throws(
    () => splitter.push(envelopeOf(new Uint8Array(11)).subarray(0, 5), () => {}),
    EnvelopeTooLargeError,
  );
  const tail = new EnvelopeSplitter(10);
  tail.push(envelopeOf(new Uint8Array(4)).subarray(0, 7), () => assert.fail("not whole"));
  assert.equal(tail.buffered, 7);
});
