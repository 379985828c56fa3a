import assert from "node:assert/strict";
import { delimiter, join } from "node:path";
import { compareVersions, locateModeld } from "./locate.ts";

const WINDOWS = Deno.build.os === "windows";
const LAUNCHER = WINDOWS ? "modeld.cmd" : "modeld";
const PLATFORM = `${Deno.build.os}-${
  ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch]
}`;
const ENV_KEYS = ["CONTENOX_MODELD_BIN", "PATH"];

/** Runs `fn` with the env vars set (undefined = unset), then restores them. */
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

/** A temp dir with `bin/`, `bin2/` and a data root `root/`; env cleared for the test. */
async function sandbox(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    for (const sub of ["bin", "bin2", "root"]) await Deno.mkdir(join(dir, sub));
    await withEnv(Object.fromEntries(ENV_KEYS.map((k) => [k, undefined])), () => fn(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes an executable shell script (a fake modeld). */
async function writeExe(path: string, body = "exit 0"): Promise<string> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  if (!WINDOWS) await Deno.chmod(path, 0o755);
  return path;
}

Deno.test("no override, no managed install, nothing on PATH → not found", () =>
  sandbox(async (dir) => {
    Deno.env.set("PATH", join(dir, "bin"));
    const r = await locateModeld(join(dir, "root"));
    assert.deepEqual(r, { source: undefined, skipped: [] });
  }));

Deno.test("modeld on PATH is found (first matching directory wins)", () =>
  sandbox(async (dir) => {
    const second = await writeExe(join(dir, "bin2", "modeld"));
    Deno.env.set("PATH", [join(dir, "bin"), "", "relative/dir", join(dir, "bin2")].join(delimiter));
    const r = await locateModeld(join(dir, "root"));
    assert.deepEqual(r, { path: second, source: "path", skipped: [] });
    const first = await writeExe(join(dir, "bin", "modeld"));
    assert.equal((await locateModeld(join(dir, "root"))).path, first);
  }));

Deno.test({
  name: "a non-executable file or a directory named modeld on PATH is ignored",
  ignore: WINDOWS,
  fn: () =>
    sandbox(async (dir) => {
      await Deno.writeTextFile(join(dir, "bin", "modeld"), "not executable");
      await Deno.chmod(join(dir, "bin", "modeld"), 0o644);
      await Deno.mkdir(join(dir, "bin2", "modeld"));
      Deno.env.set("PATH", [join(dir, "bin"), join(dir, "bin2")].join(delimiter));
      assert.equal((await locateModeld(join(dir, "root"))).path, undefined);
    }),
});

Deno.test("CONTENOX_MODELD_BIN set to a missing file → not found even though PATH has one", () =>
  sandbox(async (dir) => {
    await writeExe(join(dir, "bin", "modeld"));
    Deno.env.set("PATH", join(dir, "bin"));
    Deno.env.set("CONTENOX_MODELD_BIN", join(dir, "nope", "modeld"));
    const r = await locateModeld(join(dir, "root"));
    assert.deepEqual(r, { source: undefined, skipped: [] });
  }));

Deno.test("CONTENOX_MODELD_BIN set to a directory → not found", () =>
  sandbox(async (dir) => {
    await writeExe(join(dir, "bin", "modeld"));
    Deno.env.set("PATH", join(dir, "bin"));
    Deno.env.set("CONTENOX_MODELD_BIN", join(dir, "bin2"));
    assert.equal((await locateModeld(join(dir, "root"))).path, undefined);
  }));

Deno.test("CONTENOX_MODELD_BIN present → wins over managed installs and PATH", () =>
  sandbox(async (dir) => {
    await writeExe(join(dir, "bin", "modeld"));
    await writeExe(join(dir, "root", "modeld", "v1.0.0", PLATFORM, LAUNCHER));
    // Existence is enough, as in Go: not even the executable bit is checked.
    const ext = join(dir, "ext-modeld");
    await Deno.writeTextFile(ext, "");
    Deno.env.set("PATH", join(dir, "bin"));
    Deno.env.set("CONTENOX_MODELD_BIN", ext);
    const r = await locateModeld(join(dir, "root"));
    assert.deepEqual(r, { path: ext, source: "env", skipped: [] });
  }));

Deno.test("empty CONTENOX_MODELD_BIN counts as unset", () =>
  sandbox(async (dir) => {
    const onPath = await writeExe(join(dir, "bin", "modeld"));
    Deno.env.set("PATH", join(dir, "bin"));
    Deno.env.set("CONTENOX_MODELD_BIN", "");
    assert.equal((await locateModeld(join(dir, "root"))).path, onPath);
  }));

Deno.test("managed install via the current pointer file wins over PATH (version check skipped)", () =>
  sandbox(async (dir) => {
    await writeExe(join(dir, "bin", "modeld"));
    Deno.env.set("PATH", join(dir, "bin"));
    const installDir = join(dir, "root", "modeld", "v0.36.0", PLATFORM);
    const launcher = await writeExe(join(installDir, LAUNCHER));
    await Deno.writeTextFile(join(dir, "root", "modeld", "current"), `${installDir}\n`);
    const r = await locateModeld(join(dir, "root"));
    assert.equal(r.path, launcher);
    assert.equal(r.source, "managed");
    assert.equal(r.versionChecked, false);
    assert.deepEqual(r.skipped, [`--allow-run=${launcher}`]);
  }));

Deno.test("current pointer may name the launcher itself, or be a relative symlink", () =>
  sandbox(async (dir) => {
    const root = join(dir, "root");
    const launcher = await writeExe(join(root, "modeld", "v0.35.0", PLATFORM, LAUNCHER));
    await Deno.writeTextFile(join(root, "modeld", "current"), launcher);
    assert.equal((await locateModeld(root)).path, launcher);
    if (WINDOWS) return;
    await Deno.remove(join(root, "modeld", "current"));
    await symlink(join("v0.35.0", PLATFORM), join(root, "modeld", "current"));
    assert.equal((await locateModeld(root)).path, launcher); // resolved like Go: dir of link + target
  }));

Deno.test("without a usable current pointer, the highest installed version wins", () =>
  sandbox(async (dir) => {
    const root = join(dir, "root");
    for (const v of ["v0.9.0", "v0.36.0", "v0.10.5", "garbage"]) {
      await writeExe(join(root, "modeld", v, PLATFORM, LAUNCHER));
    }
    await Deno.mkdir(join(root, "modeld", "v9.9.9", "other-os"), { recursive: true });
    await writeExe(join(root, "modeld", ".staging", PLATFORM, LAUNCHER));
    await Deno.writeTextFile(join(root, "modeld", "current"), join(dir, "gone"));
    const r = await locateModeld(root);
    assert.equal(r.path, join(root, "modeld", "v0.36.0", PLATFORM, LAUNCHER));
    assert.equal(r.source, "managed");
  }));

Deno.test("managed lookup failure falls back to PATH", () =>
  sandbox(async (dir) => {
    const root = join(dir, "root");
    await Deno.mkdir(join(root, "modeld", "v1.0.0", PLATFORM), { recursive: true });
    await Deno.writeTextFile(join(root, "modeld", "current"), "   \n");
    const onPath = await writeExe(join(dir, "bin", "modeld"));
    Deno.env.set("PATH", join(dir, "bin"));
    assert.deepEqual(await locateModeld(root), { path: onPath, source: "path", skipped: [] });
  }));

Deno.test("compareVersions orders like Go's modeldinstall", () => {
  assert.ok(compareVersions("v0.36.0", "v0.9.1") > 0);
  assert.ok(compareVersions("0.10.0", "v0.9.99") > 0);
  assert.equal(compareVersions("v1.0", "1.0.0"), 0);
  assert.equal(compareVersions("v1.0.0+build1", "v1.0.0+build2"), 0);
  assert.ok(compareVersions("1.0.0-rc1", "1.0.0") < 0);
  assert.ok(compareVersions("1.0.0-rc2", "1.0.0-rc1") > 0);
  assert.ok(compareVersions("zzz", "v1.0.0") > 0, "unparseable compares as strings");
  assert.ok(compareVersions("garbage", "v1.0.0") < 0, "unparseable compares as strings");
});

/**
 * Deno.symlink needs unscoped --allow-read/--allow-write, which the suite does
 * not get; `deno eval` (its own process) creates the fixture link instead.
 */
async function symlink(target: string, path: string): Promise<void> {
  const code = `await Deno.symlink(${JSON.stringify(target)}, ${JSON.stringify(path)})`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

// --- The version check runs in a child process granted --allow-run for the launcher only.

async function runLocate(root: string, launchers: string[], path: string) {
  const script = join(root, "..", "locate_main.ts");
  await Deno.writeTextFile(
    script,
    `import { locateModeld } from "${new URL("./locate.ts", import.meta.url).href}";
console.log(JSON.stringify(await locateModeld(Deno.args[0])));`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--no-lock",
      "--quiet",
      `--allow-read=${join(root, "..")}`,
      `--allow-env=CONTENOX_MODELD_BIN,PATH`,
      `--allow-run=${launchers.join(",")}`,
      script,
      root,
    ],
    env: { PATH: path },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, stderr);
  assert.equal(stderr, "");
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  // Deno puts its own node_compat_bin directory on a child's PATH; ignore it.
  result.skipped = result.skipped.filter((f: string) => !f.includes("node_compat_bin"));
  return result;
}

Deno.test({
  name: "with --allow-run, managed launchers are checked with `version --json`",
  ignore: WINDOWS,
  fn: () =>
    sandbox(async (dir) => {
      const root = join(dir, "root");
      const m = (v: string) => join(root, "modeld", v, PLATFORM, LAUNCHER);
      const json = (o: unknown) => `echo '${JSON.stringify(o)}'`;
      const current = await writeExe(m("v0.40.0"), json({ version: "v0.40.0", protocol: 2 }));
      const ok = await writeExe(m("v0.36.0"), json({ version: "v0.36.0", protocol: 1 }));
      const old = await writeExe(m("v0.33.0"), json({ version: "v0.33.0" })); // protocol absent = 1
      const empty = await writeExe(m("v0.99.0"), json({ version: "" }));
      const failing = await writeExe(m("v0.98.0"), "exit 3");
      const args = await writeExe(
        m("v0.97.0"),
        `[ "$1 $2" = "version --json" ] || exit 1; ${json({ version: "v0.0.1" })}`,
      );
      await Deno.writeTextFile(join(root, "modeld", "current"), join(m("v0.40.0"), ".."));
      const onPath = await writeExe(join(dir, "bin", "modeld"));
      const all = [current, ok, old, empty, failing, args];

      // current reports an unsupported protocol → scan → v0.36.0 is the highest good one.
      let r = await runLocate(root, all, join(dir, "bin"));
      assert.deepEqual(r, { path: ok, source: "managed", versionChecked: true, skipped: [] });

      // The scan compares the versions the binaries report.
      await Deno.remove(ok);
      await Deno.remove(old);
      r = await runLocate(root, all, join(dir, "bin"));
      assert.equal(r.path, args);

      // No compatible install → PATH.
      await Deno.remove(args);
      r = await runLocate(root, all, join(dir, "bin"));
      assert.deepEqual(r, { path: onPath, source: "path", skipped: [] });
    }),
});
