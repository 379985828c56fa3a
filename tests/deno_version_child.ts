// Child of client_test.ts: runs the client as if on Deno 2.9.5 (a version that
// crashes on a daemon restart). Two clients, several calls: one warning, no error.
Object.defineProperty(Deno, "version", { value: { ...Deno.version, deno: "2.9.5" } });
const { ModeldClient } = await import("../mod.ts");

const dataRoot = Deno.args[0];
for (let i = 0; i < 2; i++) {
  await using client = new ModeldClient({ dataRoot });
  await client.health();
  await client.health();
}
console.log("ok");
