/**
 * Lease fuzz (issue 8): thousands of mutations of a valid Go-written lease, and
 * special files, named `modeld.lease`. Every outcome must be a well-formed
 * record or a `ModeldError`, each read within a time bound, the whole run too.
 * The PRNG is seeded; set `LEASE_FUZZ_SEED` to replay a failure.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  isLive,
  type LeaseRecord,
  MAX_INSTANCE_ID_CHARS,
  MAX_LEASE_BYTES,
  MAX_LEASE_TEXT_CHARS,
  parseLease,
  readLease,
} from "../../lib/lease.ts";
import { LeaseUnreadableError, ModeldError } from "../../lib/errors.ts";
import { detect } from "../../lib/detect.ts";

const VALID = `{
  "instance_id": "5f0c3c1e-8d0a-4e53-9b7b-2b0f3f4b9a11",
  "pid": 41233,
  "host": "devbox",
  "acquired_at": "2026-06-18T14:55:33.123456789+02:00",
  "renewed_at": "2026-06-18T14:55:43.12534+02:00",
  "ttl": 30000000000,
  "meta": {
    "backend": "none",
    "endpoint": "127.0.0.1:40517"
  }
}`;

const SEED = Number(Deno.env.get("LEASE_FUZZ_SEED") ?? 0x5eed) >>> 0;
const MUTATIONS = 3000;
const PER_READ_MS = 500;
const TOTAL_MS = 60_000;

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  "",
  "null",
  "true",
  "-0",
  "1e400",
  "9007199254740993",
  "-9223372036854775809",
  "0.5",
  '"\\u0000"',
  '"\\ud800"',
  '"\u001b[2J"',
  "[]",
  "{}",
  '"' + "a".repeat(5000) + '"',
  "[".repeat(3000),
  "\ufeff",
  '"2026-13-45T99:99:99Z"',
  '"0000-01-01T00:00:00Z"',
  '"9999-12-31T23:59:59.999999999+23:59"',
  '"[::1"',
  '"127.0.0.1:99999"',
  '"http://127.0.0.1:1"',
  '{"endpoint":5}',
  "\u0000",
  "\xff\xfe",
];

function mutate(rand: () => number, text: string): Uint8Array {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const at = () => Math.floor(rand() * (text.length + 1));
  const rounds = 1 + Math.floor(rand() * 3);
  for (let r = 0; r < rounds; r++) {
    const i = at();
    switch (Math.floor(rand() * 9)) {
      case 0: // truncate
        text = text.slice(0, i);
        break;
      case 1: // delete a range
        text = text.slice(0, i) + text.slice(Math.min(text.length, i + Math.floor(rand() * 40)));
        break;
      case 2: // insert a piece
        text = text.slice(0, i) + pick(PIECES) + text.slice(i);
        break;
      case 3: { // replace a JSON value after a colon
        const colon = text.indexOf(":", i);
        if (colon < 0) break;
        const end = text.slice(colon + 1).search(/[,}\n]/);
        text = text.slice(0, colon + 1) + pick(PIECES) +
          (end < 0 ? "" : text.slice(colon + 1 + end));
        break;
      }
      case 4: // duplicate a range
        text = text.slice(0, i) + text.slice(i, i + 30).repeat(1 + Math.floor(rand() * 50)) +
          text.slice(i);
        break;
      case 5: { // flip a character
        const c = String.fromCharCode(Math.floor(rand() * 0x3000));
        text = text.slice(0, i) + c + text.slice(i + 1);
        break;
      }
      case 6: // grow a string value past the bounds
        text = text.replace(
          /"(devbox|none|5f0c3c1e[^"]*)"/,
          (_m, v) => `"${v.repeat(1 + Math.floor(rand() * 600))}"`,
        );
        break;
      case 7: // pad to around the size cap
        text = text +
          " ".repeat(Math.max(0, MAX_LEASE_BYTES - text.length + Math.floor(rand() * 5) - 2));
        break;
      default: { // raw bytes in the middle
        const bytes = crypto.getRandomValues(new Uint8Array(1 + Math.floor(rand() * 16)));
        const enc = new TextEncoder().encode(text);
        const j = Math.min(enc.length, Math.floor(rand() * (enc.length + 1)));
        const out = new Uint8Array(enc.length + bytes.length);
        out.set(enc.subarray(0, j));
        out.set(bytes, j);
        out.set(enc.subarray(j), j + bytes.length);
        return out;
      }
    }
  }
  return new TextEncoder().encode(text);
}

function assertWellFormed(rec: LeaseRecord): void {
  assert.equal(typeof rec.instanceId, "string");
  assert.ok(rec.instanceId.length <= MAX_INSTANCE_ID_CHARS);
  assert.ok(rec.host.length <= MAX_LEASE_TEXT_CHARS);
  for (const [k, v] of Object.entries(rec.meta)) {
    assert.ok(k.length <= MAX_LEASE_TEXT_CHARS && v.length <= MAX_LEASE_TEXT_CHARS);
  }
  assert.ok(Number.isInteger(rec.pid) && Number.isInteger(rec.ttlNanos));
  assert.ok(!Number.isNaN(rec.expiresAt.getTime()));
  isLive(rec); // never throws
}

type Outcome = "record" | "none" | "unreadable";

async function readOnce(root: string): Promise<{ outcome: Outcome; ms: number }> {
  const t0 = performance.now();
  try {
    const rec = await readLease(root, { timeoutMs: 5_000 });
    if (rec) assertWellFormed(rec);
    return { outcome: rec ? "record" : "none", ms: performance.now() - t0 };
  } catch (err) {
    assert.ok(err instanceof ModeldError, `not a ModeldError: ${err}`);
    assert.ok(err instanceof LeaseUnreadableError, `${err.name}: ${err.message}`);
    assert.ok(err.message.length < 1024, "the message quotes the file");
    return { outcome: "unreadable", ms: performance.now() - t0 };
  }
}

Deno.test(`lease fuzz: ${MUTATIONS} mutations of a Go lease give a record or a LeaseUnreadableError, each within ${PER_READ_MS} ms (seed ${SEED})`, async () => {
  const root = await Deno.makeTempDir();
  const path = join(root, "modeld.lease");
  const rand = prng(SEED);
  const counts: Record<Outcome, number> = { record: 0, none: 0, unreadable: 0 };
  let slowest = 0;
  const t0 = performance.now();
  try {
    for (let n = 0; n < MUTATIONS; n++) {
      const bytes = mutate(rand, VALID);
      await Deno.writeFile(path, bytes);
      let result;
      try {
        result = await readOnce(root);
      } catch (err) {
        throw new Error(
          `mutation ${n} (seed ${SEED}): ${(err as Error).message}\n` +
            new TextDecoder().decode(bytes.subarray(0, 400)),
        );
      }
      counts[result.outcome]++;
      slowest = Math.max(slowest, result.ms);
      assert.ok(result.ms < PER_READ_MS, `mutation ${n} took ${result.ms.toFixed(1)} ms`);
      // parseLease agrees with readLease on text that fits, and never throws.
      if (bytes.length <= MAX_LEASE_BYTES) {
        const rec = parseLease(new TextDecoder().decode(bytes));
        assert.equal(rec !== undefined, result.outcome === "record", `mutation ${n}`);
      }
    }
    const total = performance.now() - t0;
    console.log(
      `  ${JSON.stringify(counts)}; slowest read ${slowest.toFixed(1)} ms; ` +
        `${MUTATIONS} reads in ${total.toFixed(0)} ms`,
    );
    assert.ok(total < TOTAL_MS, `took ${total} ms`);
    assert.ok(counts.record > 0 && counts.unreadable > 0, "the mutations hit both outcomes");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function sh(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test("lease fuzz: special files named modeld.lease are refused or absent, at once", async () => {
  const root = await Deno.makeTempDir();
  const path = join(root, "modeld.lease");
  const cases: [string, () => Promise<void>, Outcome][] = [
    ["FIFO", () => sh("mkfifo", path), "unreadable"],
    ["directory", () => Deno.mkdir(path), "unreadable"],
    ["symlink to /dev/zero", () => sh("ln", "-s", "/dev/zero", path), "unreadable"],
    ["symlink to /dev/urandom", () => sh("ln", "-s", "/dev/urandom", path), "unreadable"],
    ["symlink to /dev/null", () => sh("ln", "-s", "/dev/null", path), "unreadable"],
    ["symlink to the data root", () => sh("ln", "-s", root, path), "unreadable"],
    ["symlink loop", () => sh("ln", "-s", path, path), "unreadable"],
    ["dangling symlink", () => sh("ln", "-s", join(root, "gone"), path), "none"],
    ["symlink to a valid lease", async () => {
      await Deno.writeTextFile(join(root, "real"), VALID);
      await sh("ln", "-s", join(root, "real"), path);
    }, "record"],
    ["sparse 10 GB file", async () => {
      using f = await Deno.open(path, { write: true, create: true });
      await f.truncate(10 * 1024 ** 3);
    }, "unreadable"],
    [
      "one byte over the cap",
      () => Deno.writeTextFile(path, VALID.padEnd(MAX_LEASE_BYTES + 1)),
      "unreadable",
    ],
    [
      "exactly the cap, valid",
      () => Deno.writeTextFile(path, VALID.padEnd(MAX_LEASE_BYTES)),
      "record",
    ],
    ["empty", () => Deno.writeTextFile(path, ""), "unreadable"],
  ];
  try {
    for (const [name, make, expected] of cases) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
      await Deno.remove(join(root, "real")).catch(() => {});
      await make();
      const { outcome, ms } = await readOnce(root);
      assert.equal(outcome, expected, name);
      assert.ok(ms < PER_READ_MS, `${name} took ${ms.toFixed(1)} ms`);
      // detect() never throws for a file that is there but is not a lease.
      const found = await detect({ dataRoot: root });
      assert.equal(found.unreadableLease !== undefined, expected === "unreadable", name);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
