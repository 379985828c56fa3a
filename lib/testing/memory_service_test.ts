// The in-memory reference semantics (Go runtime/transport/memory_test.go).

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import {
  type ContextManifest,
  ContextManifestSchema,
  DecodeConfigSchema,
  PrefixInputSchema,
  SessionSnapshotSchema,
  SuffixInputSchema,
} from "../../gen/contenox/transport/v1/compute_pb.ts";
import { countTokens, type DecodeChunkInit, MemorySession, splitReply } from "./memory_service.ts";
import type { ServiceError } from "../daemon/sentinels.ts";

type Extra = Omit<MessageInitShape<typeof ContextManifestSchema>, "$typeName">;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function manifest(stable: string, extra: Extra = {}): Promise<ContextManifest> {
  return create(ContextManifestSchema, {
    backend: "mem",
    promptFormat: "f1",
    promptTemplateDigest: "t1",
    runtimeDigest: "r1",
    stableByteHash: await sha256Hex(stable),
    ...extra,
  });
}

const prefix = async (text: string, extra: Extra = {}) =>
  create(PrefixInputSchema, { text, manifest: await manifest(text, extra) });

async function collect(it: AsyncIterable<DecodeChunkInit>): Promise<DecodeChunkInit[]> {
  const out = [];
  for await (const c of it) out.push(c);
  return out;
}

Deno.test("tokens are code points; replies split into word pieces", () => {
  assert.equal(countTokens("héllo 👋"), 7);
  assert.deepEqual(splitReply(" a  b c "), [" a", "  b", " c", " "]);
  assert.equal(splitReply("Hello there").join(""), "Hello there");
});

for (const version of ["v0.36.0", "v0.32.3"] as const) {
  Deno.test(`warm reuse and drops (${version})`, async () => {
    const s = new MemorySession({ version, numCtx: 100 });
    const cold = await s.ensurePrefix(await prefix("hello"));
    assert.deepEqual([cold.reusedTokens, cold.prefilledTokens, cold.droppedTokens], [0, 5, 0]);
    await s.prefillSuffix(
      create(SuffixInputSchema, { text: " world", manifest: await manifest("hello") }),
    );
    const warm = await s.ensurePrefix(await prefix("hello"));
    // v0.36 counts the dropped suffix; v0.32.3 reports 0 dropped when warm.
    assert.deepEqual(
      [warm.reusedTokens, warm.prefilledTokens, warm.droppedTokens],
      version === "v0.36.0" ? [5, 0, 6] : [5, 0, 0],
    );
    const changed = await s.ensurePrefix(await prefix("howdy"));
    assert.deepEqual([changed.reusedTokens, changed.prefilledTokens, changed.droppedTokens], [
      0,
      5,
      5,
    ]);
    const template = await s.ensurePrefix(await prefix("howdy", { promptTemplateDigest: "t2" }));
    assert.equal(template.reusedTokens, 0, "a template change is cold");
  });
}

Deno.test("a volatile-only manifest change stays warm at v0.36 but not at v0.32.3", async () => {
  for (const version of ["v0.36.0", "v0.32.3"] as const) {
    const s = new MemorySession({ version, numCtx: 100 });
    await s.ensurePrefix(await prefix("sys", { totalBytes: 10 }));
    const next = await s.ensurePrefix(await prefix("sys", { totalBytes: 20 }));
    assert.equal(next.reusedTokens, version === "v0.36.0" ? 3 : 0, version);
  }
});

Deno.test("suffix manifest checks (v0.36) and overflow counts", async () => {
  const s = new MemorySession({ version: "v0.36.0", numCtx: 8 });
  await s.ensurePrefix(await prefix("hello"));
  await assert.rejects(
    s.prefillSuffix(create(SuffixInputSchema, { text: "x", manifest: await manifest("other") })),
    (err: ServiceError) =>
      err.token === "manifest_mismatch" &&
      err.message ===
        "contextasm: context manifest mismatch: stable prefix changed between EnsurePrefix and PrefillSuffix",
  );
  await assert.rejects(
    s.prefillSuffix(
      create(SuffixInputSchema, { text: "x", manifest: await manifest("hello", { backend: "b" }) }),
    ),
    (err: ServiceError) => err.message === "contextasm: context manifest mismatch: backend changed",
  );
  await assert.rejects(
    s.prefillSuffix(create(SuffixInputSchema, { text: "toolong" })),
    (err: ServiceError) =>
      err.token === "context_overflow" &&
      err.detail?.stage === "suffix" && err.detail.residentTokens === 5 &&
      err.detail.additionalTokens === 7,
  );
  const st = await s.prefillSuffix(create(SuffixInputSchema, { text: "abc" }));
  assert.deepEqual([st.suffixTokens, st.residentTokens, st.availableTokens], [3, 8, 0]);
});

Deno.test("decode yields x per token, nothing after close", async () => {
  const s = new MemorySession({ version: "v0.36.0", numCtx: 0 });
  const chunks = await collect(
    s.decode(create(DecodeConfigSchema, { maxTokens: 5 }), { handle: "h" }),
  );
  assert.deepEqual(chunks.map((c) => c.text), ["x", "x", "x", "x", "x"]);
  assert.equal((await collect(s.decode(create(DecodeConfigSchema), { handle: "h" }))).length, 0);
  s.close();
  assert.throws(
    () => s.decode(create(DecodeConfigSchema, { maxTokens: 1 }), { handle: "h" }),
    /session is closed/,
  );
  await assert.rejects(s.ensurePrefix(await prefix("a")), /session is closed/);
  assert.equal(s.explain().closed, true);
});

Deno.test("snapshot and restore keep counts and manifest", async () => {
  const s = new MemorySession({ version: "v0.36.0", numCtx: 100 });
  const p = await s.ensurePrefix(await prefix("hello"));
  await s.prefillSuffix(create(SuffixInputSchema, { text: " world" }));
  const snap = create(SessionSnapshotSchema, s.snapshot());
  assert.deepEqual([snap.residentTokens, snap.prefixTokens, snap.numCtx], [11, 5, 100]);
  await s.ensurePrefix(await prefix("other"));
  await s.restore(snap);
  const report = s.explain();
  assert.equal(report.residentTokens, 11);
  assert.equal(report.manifestDigest, p.manifestDigest);
});
