import assert from "node:assert/strict";
import { join } from "node:path";
import { dataRoot, onDataRootChange, readEnv, resolveDataRoot, setDataRoot } from "./data_root.ts";

const HOME_VAR = Deno.build.os === "windows" ? "USERPROFILE" : "HOME";

async function withEnv(vars: Record<string, string | undefined>, fn: () => void | Promise<void>) {
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

Deno.test("CONTENOX_DATA_ROOT wins over home", () =>
  withEnv({ CONTENOX_DATA_ROOT: "/srv/contenox", [HOME_VAR]: "/home/me" }, () => {
    assert.deepEqual(resolveDataRoot(), { root: "/srv/contenox", source: "env", skipped: [] });
    assert.equal(dataRoot(), "/srv/contenox");
  }));

Deno.test("empty CONTENOX_DATA_ROOT falls back to <home>/.contenox", () =>
  withEnv({ CONTENOX_DATA_ROOT: "", [HOME_VAR]: "/home/me" }, () => {
    assert.deepEqual(resolveDataRoot(), {
      root: join("/home/me", ".contenox"),
      source: "home",
      skipped: [],
    });
  }));

Deno.test("no home → the relative .contenox", () =>
  withEnv({ CONTENOX_DATA_ROOT: undefined, [HOME_VAR]: undefined }, () => {
    assert.deepEqual(resolveDataRoot(), { root: ".contenox", source: "relative", skipped: [] });
  }));

Deno.test("setDataRoot overrides everything; empty string restores the default", () =>
  withEnv({ CONTENOX_DATA_ROOT: "/srv/contenox" }, () => {
    try {
      setDataRoot("/tmp/test-root");
      assert.deepEqual(resolveDataRoot(), {
        root: "/tmp/test-root",
        source: "override",
        skipped: [],
      });
      setDataRoot("");
      assert.equal(dataRoot(), "/srv/contenox");
    } finally {
      setDataRoot("");
    }
  }));

Deno.test("onDataRootChange listeners run on every setDataRoot until removed", () => {
  const seen: string[] = [];
  const off = onDataRootChange(() => seen.push(dataRoot()));
  try {
    setDataRoot("/a");
    setDataRoot("/b");
  } finally {
    off();
    setDataRoot("");
  }
  assert.deepEqual(seen, ["/a", "/b"]);
});

Deno.test("readEnv reads granted variables and reports ungranted ones", () =>
  withEnv({ CONTENOX_DATA_ROOT: "x" }, () => {
    const skipped: string[] = [];
    assert.equal(readEnv("CONTENOX_DATA_ROOT", skipped), "x");
    // The suite is not granted this variable: it is skipped, never prompted for.
    assert.equal(readEnv("MODELDCONN_TEST_UNGRANTED", skipped), undefined);
    assert.deepEqual(skipped, ["--allow-env=MODELDCONN_TEST_UNGRANTED"]);
  }));

Deno.test("without --allow-env the data root is still resolved, and the flags are named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = join(dir, "main.ts");
    await Deno.writeTextFile(
      script,
      `import { resolveDataRoot } from "${new URL("./data_root.ts", import.meta.url).href}";
console.log(JSON.stringify(resolveDataRoot()));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-lock", "--quiet", script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
      root: ".contenox",
      source: "relative",
      skipped: ["--allow-env=CONTENOX_DATA_ROOT", `--allow-env=${HOME_VAR}`],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
