/**
 * Embeddings: `client.embed()` returns a vector per text; compare them with
 * cosine similarity.
 *
 * ```sh
 * deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 examples/embeddings.ts $HOME/.contenox MODEL
 * ```
 *
 * @module
 */
import { ModeldClient, resolveModel } from "@contenox/modeldconn";

const [dataRoot, model] = Deno.args;
if (!dataRoot) {
  console.error("usage: embeddings.ts DATA_ROOT [MODEL]");
  Deno.exit(2);
}

await using client = new ModeldClient({ dataRoot });
const ref = await resolveModel(client, model); // default: the only stored model
const texts = ["The cat sat on the mat.", "A cat is sitting on a mat.", "Stock prices fell."];
const vectors = [];
for (const text of texts) vectors.push(await client.embed(ref, text));

const cosine = (a: number[], b: number[]) => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / (Math.sqrt(na) * Math.sqrt(nb));
};
console.log(`${vectors[0].length} dimensions`);
console.log(`similar:   ${cosine(vectors[0], vectors[1]).toFixed(3)}`);
console.log(`unrelated: ${cosine(vectors[0], vectors[2]).toFixed(3)}`);
