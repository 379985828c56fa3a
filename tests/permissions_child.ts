// Child of permissions_test.ts: one turn and a push through the public API with the
// permissions it was started with. Prints "ok <text>" or "<ErrorClass> <message>".
import { ModeldClient, PermissionNeededError } from "../mod.ts";

const dataRoot = Deno.args[0] || undefined; // "" = the default data root
try {
  await using client = new ModeldClient({ dataRoot });
  await using session = await client.openSession({ name: "m", type: "llama" }, {
    config: { numCtx: 256 },
  });
  await session.ensurePrefix({ text: "You are terse." });
  await session.prefillSuffix({ text: "Hi" });
  const { text } = await session.decode({ maxTokens: 16 }).collect();
  // A push goes over fetch (its own HTTP/2 client): the same two grants suffice.
  const pushed = await client.pushModel(new TextEncoder().encode("GGUF pushed"), { name: "p" });
  console.log(`pushed ${pushed.bytesWritten}`);
  console.log(`ok ${text}`);
} catch (err) {
  console.log(`${(err as Error).name} ${(err as Error).message}`);
  for (let cause = (err as Error).cause; cause instanceof Error; cause = cause.cause) {
    console.log(`cause: ${cause.name} ${cause.message}`);
  }
  Deno.exit(err instanceof PermissionNeededError ? 3 : 1);
}
