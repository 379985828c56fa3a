/**
 * The documentation as a new user meets it: the README's install line,
 * requirements and first example (run exactly as written, from a project
 * outside this repository, against the test daemon), the doc page of every
 * export (`deno doc --lint`), and JSDoc examples that import the package.
 */
import assert from "node:assert/strict";
import { startTestDaemon } from "../testing.ts";

const REPO = new URL("../", import.meta.url).pathname;
const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));
const ENTRIES = ["mod.ts", "wire.ts", "testing.ts", "cli.ts", "daemon.ts"];
/** Where scratch projects live: outside the repository, as a user's project would be. */
const SCRATCH = "/tmp/modeldconn-scratch";

function codeBlocks(markdown: string): { lang: string; code: string }[] {
  return [...markdown.matchAll(/^```(\S*)[^\n]*\n([\s\S]*?)^```/gm)].map((m) => ({
    lang: m[1],
    code: m[2],
  }));
}

async function deno(args: string[], cwd = REPO) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("README starts with the install line, then a requirements line", () => {
  const first = codeBlocks(README)[0];
  assert.equal(first.lang, "sh");
  assert.equal(first.code.trim(), "deno add jsr:@contenox/modeldconn");
  const requirements = README.split("\n").slice(0, 15).join(" ");
  assert.match(requirements, /Requirements:.*Deno 2\.9\.3/);
  assert.match(requirements, /2\.9\.4 to 2\.9\.6 crash.*denoland\/deno#36788/);
  assert.match(requirements, /Node\.js and npm/);
});

Deno.test("README's first library example runs exactly as written, from a project outside the repo importing the package by its import map", async () => {
  const blocks = codeBlocks(README);
  const example = blocks.find((b) => b.lang === "ts")!;
  assert.match(example.code, /from "@contenox\/modeldconn"/);
  assert.match(example.code, /dataRoot/, "the example names its data root");
  // The permission line printed right after it.
  const after = blocks[blocks.indexOf(example) + 1];
  assert.equal(after.lang, "sh");
  const line = after.code.trim();
  assert.match(
    line,
    /^deno run --allow-read=\$HOME\/\.contenox --allow-net=127\.0\.0\.1 hello\.ts/,
  );
  assert.doesNotMatch(line, /--allow-env|-A\b|--allow-all/);

  await Deno.mkdir(SCRATCH, { recursive: true });
  const project = await Deno.makeTempDir({ dir: SCRATCH, prefix: "readme-" });
  try {
    // What `deno add jsr:@contenox/modeldconn` writes; `links` stands in for the
    // registry (this machine cannot reach jsr.io) and resolves to this checkout,
    // with its own deno.json imports, exactly as a published package resolves.
    await Deno.writeTextFile(
      `${project}/deno.json`,
      JSON.stringify({
        imports: { "@contenox/modeldconn": "jsr:@contenox/modeldconn@^0.1.0" },
        links: [REPO],
      }),
    );
    await Deno.writeTextFile(`${project}/hello.ts`, example.code);
    const home = `${project}/home`;
    await Deno.mkdir(`${home}/.contenox`, { recursive: true });
    await using daemon = await startTestDaemon({
      dataRoot: `${home}/.contenox`,
      models: { smollm2: "GGUF" },
      reply: "Air scatters blue light the most.",
    });
    const args = line.replaceAll("$HOME", home).split(/\s+/);
    assert.equal(args.shift(), "deno");
    const res = await deno(["run", "--no-prompt", ...args.slice(1)], project);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^Air scatters blue light the most\.\n/);
    assert.match(res.stdout, /stopReason: "end"/);
    assert.equal(daemon.openSessions, 0);
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});

Deno.test("README's Development commands work from a fresh clone: full paths or a PATH line, tasks that exist", async () => {
  const dev = README.slice(README.indexOf("## Development"));
  const block = codeBlocks(dev)[0].code;
  assert.match(block, /^bash tools\/install\.sh/m);
  assert.match(block, /^export PATH=\$PWD\/\.tools\/node_modules\/\.bin:\$PATH/m);
  const tasks = Object.keys(
    JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks,
  );
  for (const [, task] of block.matchAll(/^deno task (\S+)/gm)) {
    assert.ok(tasks.includes(task), `deno task ${task} exists`);
  }
});

Deno.test("deno doc --lint is clean on every export", async () => {
  const res = await deno(["doc", "--lint", ...ENTRIES]);
  assert.equal(res.code, 0, res.stderr.slice(0, 4000));
});

Deno.test("mod.ts exports what users call, led by the client and the high-level API; wire types live in ./wire", async () => {
  const mod = await import("../mod.ts");
  for (const name of ["generate", "generateStream", "Chat", "waitForDaemon", "ModeldClient"]) {
    assert.ok(name in mod, name);
  }
  assert.deepEqual(Object.keys(mod).filter((k) => k.endsWith("Schema")), []);
  const res = await deno(["doc", "--json", "mod.ts"]);
  const doc = JSON.parse(res.stdout);
  const names = new Set<string>(
    Object.values(doc.nodes as Record<string, { symbols: { name: string }[] }>)
      .flatMap((n) => n.symbols.map((s) => s.name)),
  );
  assert.ok(names.size < 150, `${names.size} symbols`);
  assert.ok(![...names].some((n) => n.endsWith("Schema")));
  const text = await Deno.readTextFile(new URL("../mod.ts", import.meta.url));
  const firstExport = text.slice(text.indexOf("export "), text.indexOf("export ") + 200);
  assert.match(firstExport, /ModeldClient/);
  assert.match(text.slice(0, text.indexOf("// Sessions")), /generate.*Chat.*waitForDaemon/s);
});

Deno.test("every JSDoc example on the public doc pages imports the package, never an internal path", async () => {
  const res = await deno(["doc", "--json", ...ENTRIES.filter((e) => e !== "cli.ts")]);
  assert.equal(res.code, 0, res.stderr);
  const internal = [...res.stdout.matchAll(/import[^"\\]*from \\"(\.{1,2}\/[^"\\]+)\\"/g)]
    .map((m) => m[1]);
  assert.deepEqual(internal, []);
  assert.match(res.stdout, /from \\"@contenox\/modeldconn\\"/);
});
