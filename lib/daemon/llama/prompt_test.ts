import assert from "node:assert/strict";
import { manifestDigest } from "../../context.ts";
import { manifestDigestNow } from "./prompt.ts";

Deno.test("manifestDigestNow is the client's manifestDigest, synchronously", async () => {
  const manifests = [
    {},
    { addBos: true, stableBytes: 3 }, // zero: no identity field, no hash
    { backend: "llama" },
    {
      backend: "llama",
      profileId: "p<1>&",
      modelDigest: "sha256:ab",
      promptFormat: "chatml",
      stableByteHash: "e3b0",
      stableTokenHash: "9f86",
      stableBytes: 42,
      addBos: true,
      segments: [{ role: "system", kind: "stable", byteStart: 0, byteEnd: 42 }],
    },
    { backend: "llama", profileId: "ünïcödé \u2028 ✓" },
  ];
  for (const m of manifests) assert.equal(manifestDigestNow(m), await manifestDigest(m));
  assert.equal(manifestDigestNow({}), "");
  assert.equal(manifestDigestNow({ backend: "llama" }).length, 64);
});
