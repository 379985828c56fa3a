/**
 * Start-up cost (issue 10): code that never dials must not load the HTTP/2
 * stack. The static (non-type, non-dynamic) import graph of the package holds
 * no npm package, no `node:` built-in and no generated protobuf module; they
 * come in through `lib/dial.ts`'s dynamic import of the transport, or once a
 * call failed. `deno info --json` lists type-only and dynamic imports too, so
 * only edges with code that are not dynamic are followed.
 */
import assert from "node:assert/strict";
import { denoInfo } from "./testing/_test_support.ts";

const ROOT = new URL("../", import.meta.url);
const GEN = new URL("gen/", ROOT).href;
const TRANSPORT = new URL("lib/transport.ts", ROOT).href;

interface InfoDependency {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

/** Every module `entries` load at start-up: static imports that carry code, transitively. */
async function staticGraph(...entries: string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  for (const entry of entries) {
    const info = await denoInfo(entry) as {
      modules: InfoModule[];
      redirects: Record<string, string>;
    };
    const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
    const pending = [new URL(entry, ROOT).href];
    while (pending.length > 0) {
      const specifier = pending.pop()!;
      const resolved = info.redirects[specifier] ?? specifier;
      if (seen.has(resolved)) continue;
      seen.add(resolved);
      for (const dep of bySpecifier.get(resolved)?.dependencies ?? []) {
        // `import { type X }` is listed with code although Deno erases it: write
        // `import type` in the start-up graph so that this walk stays exact.
        if (dep.code && !dep.isDynamic) pending.push(dep.code.specifier);
      }
    }
  }
  return seen;
}

/** What a start-up graph must not hold: npm packages, `node:` built-ins, gen/. */
function heavy(specifier: string): boolean {
  return specifier.startsWith("npm:") || specifier.includes("/node_modules/") ||
    specifier.startsWith("node:") || specifier.startsWith(GEN);
}

function relative(specifiers: Iterable<string>): string[] {
  return [...specifiers].map((s) => s.startsWith(ROOT.href) ? s.slice(ROOT.href.length) : s)
    .sort();
}

Deno.test("importing the package loads no npm package, node: built-in or gen/ module before a dial", async () => {
  const graph = await staticGraph("mod.ts");
  assert.ok(graph.has(new URL("lib/client.ts", ROOT).href), "the walk reaches the client");
  assert.deepEqual(relative([...graph].filter(heavy)), []);
  assert.ok(!graph.has(TRANSPORT), "the transport is loaded by lib/dial.ts only");
});

Deno.test("the walk sees what a dial loads: the transport's graph is heavy", async () => {
  const graph = await staticGraph("lib/transport.ts");
  const found = relative([...graph].filter(heavy));
  assert.ok(found.some((s) => s.startsWith("gen/")), found.join(", "));
  assert.ok(found.some((s) => s.includes("@connectrpc/connect")), found.join(", "));
});

Deno.test("`cli.ts status` loads no transport, npm package, node: built-in or gen/ module before it dials", async () => {
  // The CLI loads each command's module when it runs it: `status` is cli.ts
  // plus lib/cli/status.ts. (It used node:util's parseArgs: 11 ms of CPU per run.)
  const graph = await staticGraph("cli.ts", "lib/cli/status.ts");
  assert.ok(graph.has(new URL("lib/probe.ts", ROOT).href), "the walk reaches probe()");
  const found = relative([...graph].filter(heavy));
  assert.deepEqual(found, []);
  assert.ok(!graph.has(TRANSPORT), "the transport is loaded by lib/dial.ts only");
});
