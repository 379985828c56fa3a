import assert from "node:assert/strict";
import { join } from "node:path";
import {
  available,
  backend,
  resetServeableCache,
  SERVEABLE_GRACE_MS,
  serveableBackend,
  serveableFrom,
  snapshotDir,
} from "./availability.ts";
import { setDataRoot } from "./data_root.ts";
import { detect, errorForState } from "./detect.ts";
import {
  DaemonNotInstalledError,
  DaemonNotRunningError,
  DaemonStaleError,
  PermissionNeededError,
} from "./errors.ts";
import { acquireLease, formatRfc3339, LEASE_FILE_NAME } from "./lease.ts";

const WINDOWS = Deno.build.os === "windows";
const HOUR = 3_600_000;

async function withEnv(vars: Record<string, string | undefined>, fn: () => Promise<void>) {
  const saved = new Map(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (entries: Iterable<[string, string | undefined]>) => {
    for (const [k, v] of entries) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  };
  apply(Object.entries(vars));
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

interface Sandbox {
  /** The data root (empty). */
  root: string;
  /** A PATH directory, on PATH, initially empty. */
  bin: string;
  /** Puts an executable `modeld` in `bin` and returns its path. */
  installOnPath(): Promise<string>;
  /** Writes a Go-format lease renewed at `renewed` with a 30 s ttl. */
  writeLease(renewed: Date, meta?: Record<string, string>): Promise<void>;
}

/** A data root and a PATH of one empty directory; CONTENOX_MODELD_BIN unset. */
async function sandbox(fn: (s: Sandbox) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const root = join(dir, "root");
  const bin = join(dir, "bin");
  await Deno.mkdir(root);
  await Deno.mkdir(bin);
  const s: Sandbox = {
    root,
    bin,
    async installOnPath() {
      const path = join(bin, "modeld");
      await Deno.writeTextFile(path, "#!/bin/sh\n");
      if (!WINDOWS) await Deno.chmod(path, 0o755);
      return path;
    },
    async writeLease(renewed, meta = {}) {
      const metaText = Object.keys(meta).length
        ? `,\n  "meta": ${JSON.stringify(meta, null, 2).replaceAll("\n", "\n  ")}`
        : "";
      await Deno.writeTextFile(
        join(root, LEASE_FILE_NAME),
        `{\n  "instance_id": "instance-a",\n  "pid": 7,\n  "host": "h",\n` +
          `  "acquired_at": "${formatRfc3339(renewed)}",\n  "renewed_at": "${
            formatRfc3339(renewed)
          }",\n  "ttl": 30000000000${metaText}\n}`,
      );
    },
  };
  try {
    await withEnv({ CONTENOX_MODELD_BIN: undefined, PATH: bin }, () => fn(s));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// --- contract 10.2

Deno.test("no lease, no binary → not_installed", () =>
  sandbox(async ({ root }) => {
    const r = await detect({ dataRoot: root });
    assert.deepEqual(r, {
      state: "not_installed",
      dataRoot: root,
      endpoint: "",
      instanceId: "",
      backend: "",
      skipped: [],
    });
    const err = errorForState(r);
    assert.ok(err instanceof DaemonNotInstalledError);
    assert.equal(err.state, "not_installed");
    assert.equal(err.cause, undefined);
  }));

Deno.test("no lease, binary on PATH → not_running with the binary reported", () =>
  sandbox(async (s) => {
    const bin = await s.installOnPath();
    const r = await detect({ dataRoot: s.root });
    assert.equal(r.state, "not_running");
    assert.equal(r.binary, bin);
    assert.equal(r.binarySource, "path");
    assert.ok(errorForState(r) instanceof DaemonNotRunningError);
  }));

Deno.test("lease (ttl 30 s) observed 1 h later → stale", () =>
  sandbox(async (s) => {
    await s.installOnPath();
    const lease = await acquireLease(s.root, {
      ttlMs: 30_000,
      meta: { endpoint: "127.0.0.1:5000" },
    });
    try {
      const r = await detect({ dataRoot: s.root, now: new Date(Date.now() + HOUR) });
      assert.equal(r.state, "stale");
      assert.equal(r.instanceId, lease.instanceId);
      assert.equal(r.endpoint, "", "stale reports no endpoint");
      assert.equal(r.lease?.endpoint, "127.0.0.1:5000");
      const err = errorForState(r);
      assert.ok(err instanceof DaemonStaleError);
      assert.equal(err.instanceId, lease.instanceId);
    } finally {
      await lease.release();
    }
  }));

Deno.test("fresh lease with meta.endpoint → running, endpoint reported", () =>
  sandbox(async (s) => {
    const bin = await s.installOnPath();
    await s.writeLease(new Date(), { endpoint: "127.0.0.1:5000", backend: "llama" });
    const r = await detect({ dataRoot: s.root });
    assert.equal(r.state, "running");
    assert.equal(r.endpoint, "127.0.0.1:5000");
    assert.equal(r.instanceId, "instance-a");
    assert.equal(r.backend, "llama");
    assert.equal(r.binary, bin);
    assert.equal(errorForState(r), undefined);
  }));

Deno.test("fresh lease but no binary → still running (lease precedes binary)", () =>
  sandbox(async (s) => {
    await s.writeLease(new Date(), { endpoint: "127.0.0.1:5000" });
    const r = await detect({ dataRoot: s.root });
    assert.equal(r.state, "running");
    assert.equal(r.binary, undefined);
  }));

Deno.test("detect stays offline: a dead endpoint still reads running", () =>
  sandbox(async (s) => {
    await s.writeLease(new Date(), { endpoint: "127.0.0.1:1" });
    assert.equal((await detect({ dataRoot: s.root })).state, "running");
  }));

Deno.test("expired lease, no binary → not_installed", () =>
  sandbox(async (s) => {
    await s.writeLease(new Date(Date.now() - HOUR));
    const r = await detect({ dataRoot: s.root });
    assert.equal(r.state, "not_installed");
    assert.equal(r.lease?.instanceId, "instance-a");
  }));

Deno.test("CONTENOX_MODELD_BIN set to a missing file → not located even if PATH has one", () =>
  sandbox(async (s) => {
    await s.installOnPath();
    await withEnv({ CONTENOX_MODELD_BIN: join(s.root, "missing") }, async () => {
      const r = await detect({ dataRoot: s.root });
      assert.equal(r.state, "not_installed");
      assert.equal(r.binary, undefined);
    });
  }));

Deno.test("CONTENOX_MODELD_BIN present → wins over PATH", () =>
  sandbox(async (s) => {
    await s.installOnPath();
    const ext = join(s.root, "ext-modeld");
    await Deno.writeTextFile(ext, "");
    await withEnv({ CONTENOX_MODELD_BIN: ext }, async () => {
      const r = await detect({ dataRoot: s.root });
      assert.equal(r.state, "not_running");
      assert.equal(r.binary, ext);
      assert.equal(r.binarySource, "env");
    });
  }));

Deno.test("a corrupt lease counts as no lease", () =>
  sandbox(async (s) => {
    await Deno.writeTextFile(join(s.root, LEASE_FILE_NAME), '{"instance_id": "x", "renewed_at"');
    assert.equal((await detect({ dataRoot: s.root })).state, "not_installed");
    await s.installOnPath();
    const r = await detect({ dataRoot: s.root });
    assert.equal(r.state, "not_running");
    assert.equal(r.lease, undefined);
  }));

Deno.test("detect without dataRoot uses the setDataRoot override", () =>
  sandbox(async (s) => {
    await s.writeLease(new Date(), { endpoint: "127.0.0.1:5000" });
    setDataRoot(s.root);
    try {
      const r = await detect();
      assert.equal(r.dataRoot, s.root);
      assert.equal(r.state, "running");
    } finally {
      setDataRoot("");
    }
  }));

// --- contract 10.3: serveable backend grace

const T0 = new Date("2026-06-21T18:00:00Z");
const at = (ms: number) => new Date(T0.getTime() + ms);

Deno.test("serveableFrom: live backend is returned and cached", () => {
  resetServeableCache();
  assert.equal(serveableFrom("llama", T0), "llama");
  assert.equal(serveableFrom("", at(1)), "llama");
  resetServeableCache();
});

Deno.test("serveableFrom: within the 60 s grace → cached backend (inclusive)", () => {
  resetServeableCache();
  serveableFrom("llama", T0);
  assert.equal(serveableFrom("", at(SERVEABLE_GRACE_MS - 1_000)), "llama");
  assert.equal(serveableFrom("", at(SERVEABLE_GRACE_MS)), "llama");
  resetServeableCache();
});

Deno.test("serveableFrom: after the grace → empty, and the cache stays cleared", () => {
  resetServeableCache();
  serveableFrom("llama", T0);
  assert.equal(serveableFrom("", at(SERVEABLE_GRACE_MS + 1_000)), "");
  assert.equal(serveableFrom("", at(SERVEABLE_GRACE_MS + 2_000)), "");
  // Even a time inside the old window no longer brings it back.
  assert.equal(serveableFrom("", at(1_000)), "");
});

Deno.test("serveableFrom: no prior observation → empty", () => {
  resetServeableCache();
  assert.equal(serveableFrom("", T0), "");
});

Deno.test("serveableFrom: a new live observation re-arms the window", () => {
  resetServeableCache();
  serveableFrom("llama", T0);
  serveableFrom("", at(10_000));
  serveableFrom("llama", at(20_000));
  assert.equal(serveableFrom("", at(20_000 + SERVEABLE_GRACE_MS - 1_000)), "llama");
  resetServeableCache();
});

Deno.test("serveableFrom: setDataRoot clears the cache", () => {
  resetServeableCache();
  serveableFrom("llama", T0);
  setDataRoot("");
  assert.equal(serveableFrom("", at(1)), "");
});

Deno.test("available/backend/serveableBackend with a real lease in a temp data root", () =>
  sandbox(async (s) => {
    setDataRoot(s.root);
    try {
      assert.equal(await backend(), "");
      assert.equal(await available(), false);
      assert.equal(await serveableBackend(), "");

      const lease = await acquireLease(s.root, {
        ttlMs: 30_000,
        meta: { endpoint: "127.0.0.1:5000", backend: "openvino" },
      });
      assert.equal(await backend(), "openvino");
      assert.equal(await available(), true);
      assert.equal(await serveableBackend(), "openvino");

      await lease.release();
      assert.equal(await backend(), "");
      assert.equal(await available(), false);
      assert.equal(await serveableBackend(), "openvino", "grace keeps it advertised");

      setDataRoot(s.root); // a (re)set data root forgets what it saw
      assert.equal(await serveableBackend(), "");

      await s.writeLease(new Date(Date.now() - HOUR), { backend: "llama" });
      assert.equal(await backend(), "", "an expired lease has no backend");
      assert.equal(await available(), false);
    } finally {
      setDataRoot("");
    }
  }));

// --- SnapshotDir (contract 1.7)

Deno.test("snapshotDir: disable > dir > data root", () =>
  withEnv({
    CONTENOX_WARM_SNAPSHOT_DISABLE: undefined,
    CONTENOX_WARM_SNAPSHOT_DIR: undefined,
  }, async () => {
    setDataRoot("/data");
    try {
      assert.equal(snapshotDir("llama"), join("/data", "modeld-snapshots", "llama"));
      Deno.env.set("CONTENOX_WARM_SNAPSHOT_DIR", "/snaps");
      assert.equal(snapshotDir("openvino"), join("/snaps", "openvino"));
      Deno.env.set("CONTENOX_WARM_SNAPSHOT_DISABLE", "1");
      assert.equal(snapshotDir("llama"), "");
      Deno.env.set("CONTENOX_WARM_SNAPSHOT_DISABLE", "");
      assert.equal(snapshotDir("llama"), join("/snaps", "llama"));
    } finally {
      setDataRoot("");
    }
    await Promise.resolve();
  }));

// --- Missing permissions: never a crash, never a prompt

async function runChild(root: string, mode: string, flags: string[]): Promise<unknown> {
  const script = join(root, "..", "child.ts");
  const lib = (f: string) => new URL(`./${f}`, import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { detect, errorForState } from "${lib("detect.ts")}";
import { available, snapshotDir } from "${lib("availability.ts")}";
import { setDataRoot } from "${lib("data_root.ts")}";
const [mode, root] = Deno.args;
const out: Record<string, unknown> = {};
try {
  if (mode === "detect" || mode === "default") {
    const r = await detect(mode === "default" ? {} : { dataRoot: root });
    const err = errorForState(r);
    Object.assign(out, { state: r.state, binary: r.binary, skipped: r.skipped, error: err?.name,
      cause: err?.cause instanceof Error ? err.cause.message : undefined });
  } else {
    setDataRoot(root);
    out.snapshotDir = snapshotDir("llama");
    out.available = await available();
  }
} catch (err) {
  Object.assign(out, { thrown: (err as Error).name, flag: (err as { flagWithValue?: string }).flagWithValue });
}
console.log(JSON.stringify(out));`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-lock", "--quiet", ...flags, script, mode, root],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, stderr);
  assert.equal(stderr, "", "no prompt, no warning");
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

const NO_ENV_SKIPPED = ["--allow-env=CONTENOX_MODELD_BIN", "--allow-env=PATH"];

Deno.test("without --allow-env: a fresh lease reads running; the skipped flags are named", () =>
  sandbox(async (s) => {
    await s.writeLease(new Date(), { endpoint: "127.0.0.1:5000" });
    assert.deepEqual(await runChild(s.root, "detect", [`--allow-read=${s.root}`]), {
      state: "running",
      skipped: NO_ENV_SKIPPED,
    });
  }));

Deno.test("without --allow-env and no lease: not_running (discovery incomplete), flags in the cause", () =>
  sandbox(async (s) => {
    assert.deepEqual(await runChild(s.root, "detect", [`--allow-read=${s.root}`]), {
      state: "not_running",
      skipped: NO_ENV_SKIPPED,
      error: "DaemonNotRunningError",
      cause:
        "Cannot fully search for modeld: Deno permissions missing (run with --allow-env=CONTENOX_MODELD_BIN --allow-env=PATH)",
    });
  }));

Deno.test("without --allow-env and an expired lease: stale", () =>
  sandbox(async (s) => {
    await s.writeLease(new Date(Date.now() - HOUR));
    const r = await runChild(s.root, "detect", [`--allow-read=${s.root}`]) as { state: string };
    assert.equal(r.state, "stale");
  }));

Deno.test("PATH readable but its directories not: they are named, not prompted for", () =>
  sandbox(async (s) => {
    await s.installOnPath();
    const r = await runChild(s.root, "detect", [
      `--allow-read=${s.root}`,
      "--allow-env=CONTENOX_MODELD_BIN,PATH",
    ]) as { state: string; skipped: string[] };
    assert.equal(r.state, "not_running");
    assert.ok(r.skipped.includes(`--allow-read=${s.bin}`), r.skipped.join(" "));
  }));

Deno.test("with every grant, the child finds the binary on PATH", () =>
  sandbox(async (s) => {
    const bin = await s.installOnPath();
    const r = await runChild(s.root, "detect", [
      `--allow-read=${s.root},${s.bin}`,
      "--allow-env=CONTENOX_MODELD_BIN,PATH",
    ]) as { state: string; binary: string; skipped: string[] };
    assert.equal(r.state, "not_running");
    assert.equal(r.binary, bin);
    // Deno adds its own node_compat_bin directory to a child's PATH.
    assert.deepEqual(r.skipped.filter((f) => !f.includes("node_compat_bin")), []);
  }));

Deno.test("without --allow-read: detect and available throw PermissionNeededError naming the flag", () =>
  sandbox(async (s) => {
    assert.deepEqual(await runChild(s.root, "detect", []), {
      thrown: PermissionNeededError.name,
      flag: `--allow-read=${s.root}`,
    });
    assert.deepEqual(await runChild(s.root, "availability", []), {
      snapshotDir: join(s.root, "modeld-snapshots", "llama"),
      thrown: PermissionNeededError.name,
      flag: `--allow-read=${s.root}`,
    });
  }));

Deno.test("without --allow-env or --allow-read, the default data root asks for the env grant", () =>
  sandbox(async (s) => {
    const homeVar = WINDOWS ? "USERPROFILE" : "HOME";
    assert.deepEqual(await runChild(s.root, "default", []), {
      thrown: PermissionNeededError.name,
      flag: `--allow-env=CONTENOX_DATA_ROOT,${homeVar}`,
    });
  }));
