/**
 * The committed-heap curve of Health calls, read in a child process of its
 * own (`heap_child.ts`), and the check that it is flat. Under `deno test` the
 * runner's own allocations move V8's young-generation sizing, so the calls
 * run alone, with only the grants given.
 */
import assert from "node:assert/strict";

/**
 * Runs the child and asserts the curve is flat: at most 3 MiB more committed
 * heap over the second half of 10,000 calls, at most 12 MiB from 1,000 to
 * 30,000 calls.
 *
 * @param mode `node` (`RemoteNode.health()`) or `client`
 *   (`ModeldClient.health({ signal })` with one long-lived signal).
 * @param target The server's `host:port` (`node`) or the data root (`client`).
 * @param grants The child's permission flags.
 */
export async function assertHeapFlat(
  mode: "node" | "client",
  target: string,
  grants: string[],
): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--expose-gc",
      ...grants,
      new URL("./heap_child.ts", import.meta.url).pathname,
      mode,
      target,
      "1000,5000,10000,30000",
    ],
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "the child ran");
  const [at1k, at5k, at10k, at30k] = JSON.parse(
    new TextDecoder().decode(out.stdout),
  ) as number[];
  const curve =
    `${at1k} / ${at5k} / ${at10k} / ${at30k} MiB at 1,000 / 5,000 / 10,000 / 30,000 calls`;
  assert.ok(at10k - at5k < 3, `not flat over the second half of 10,000 calls: ${curve}`);
  assert.ok(at30k - at1k < 12, `the committed heap kept growing: ${curve}`);
}
