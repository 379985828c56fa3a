/**
 * The client needs no more than a user grants: it runs here in a child Deno
 * process with exactly `--allow-read=<data root> --allow-net=127.0.0.1`, finds
 * the daemon, opens a session and decodes. Without those grants it fails with
 * a PermissionNeededError naming the flag, and never prompts.
 */
import assert from "node:assert/strict";
import { startTestDaemon } from "../testing.ts";

const script = new URL("./permissions_child.ts", import.meta.url).pathname;

const repoRoot = new URL("..", import.meta.url).pathname;

async function runChild(args: string[], dataRoot: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...args, script, dataRoot],
    cwd: repoRoot,
    stdin: "null",
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

Deno.test("the client runs with only --allow-read=<data root> --allow-net=127.0.0.1", async () => {
  await using daemon = await startTestDaemon({ reply: "granted enough", models: { m: "GGUF" } });
  const res = await runChild(
    [`--allow-read=${daemon.dataRoot}`, "--allow-net=127.0.0.1"],
    daemon.dataRoot,
  );
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^ok granted enough$/m);
  assert.match(res.stdout, /^pushed 11$/m);
});

Deno.test("without --allow-net the error names the flag to add", async () => {
  await using daemon = await startTestDaemon({ models: { m: "GGUF" } });
  const res = await runChild([`--allow-read=${daemon.dataRoot}`], daemon.dataRoot);
  assert.equal(res.code, 3, res.stdout + res.stderr);
  assert.match(res.stdout, /PermissionNeededError .*--allow-net=127\.0\.0\.1/);
});

Deno.test("without --allow-read on the data root the error names the flag to add", async () => {
  await using daemon = await startTestDaemon({ models: { m: "GGUF" } });
  const res = await runChild(["--allow-net=127.0.0.1"], daemon.dataRoot);
  assert.equal(res.code, 3, res.stdout + res.stderr);
  assert.match(res.stdout, new RegExp(`PermissionNeededError .*--allow-read=${daemon.dataRoot}`));
});

Deno.test("the deno.json permission set `client` (-P=client) is all the client needs", async () => {
  // The set grants read on .cache/tmp (where the test and demo data roots live) and net on
  // 127.0.0.1; a user's own set names their data root literally (see the README).
  await using daemon = await startTestDaemon({ reply: "named set", models: { m: "GGUF" } });
  assert.ok(daemon.dataRoot.startsWith(`${repoRoot}.cache/tmp/`), daemon.dataRoot);
  const res = await runChild(["-P=client"], daemon.dataRoot);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^ok named set$/m);
});

Deno.test("without dataRoot and --allow-env the error says both fixes and never suggests a relative read", async () => {
  await using daemon = await startTestDaemon({ models: { m: "GGUF" } });
  const res = await runChild([`--allow-read=${daemon.dataRoot}`, "--allow-net=127.0.0.1"], "");
  assert.equal(res.code, 3, res.stdout + res.stderr);
  assert.match(
    res.stdout,
    /^PermissionNeededError .*--allow-env=CONTENOX_DATA_ROOT,HOME.*pass dataRoot/m,
  );
  assert.doesNotMatch(res.stdout, /--allow-read=\.contenox/);
});
