// Child of restart_test.ts, run with only --allow-read=<data root>
// --allow-net=127.0.0.1. One ModeldClient lives for the whole run; the parent
// restarts the daemon between commands read from stdin, one per line:
//
//   call   → client.status(); prints "ok <owner instance>" or "error <Class>: <message>"
//   exit   → closes the client and exits 0
//
// A crash while the idle HTTP/2 connection receives the daemon's GOAWAY
// (denoland/deno#36788) kills this process by a signal, which the parent sees.
import { ModeldClient } from "../../mod.ts";

const dataRoot = Deno.args[0];
const encoder = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(encoder.encode(`${line}\n`));

await using client = new ModeldClient({ dataRoot });
let pending = "";
say("ready");
commands: for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += text;
  let nl;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const command = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    if (command === "exit") break commands;
    if (command === "call") {
      try {
        const status = await client.status({ timeoutMs: 10_000 });
        say(`ok ${status.ownerInstanceId}`);
      } catch (err) {
        say(`error ${(err as Error).name}: ${(err as Error).message}`);
      }
    }
  }
}
