import assert from "node:assert/strict";
import { posix, win32 } from "node:path";
import { type PathRules, posixPath, windowsPath } from "./path.ts";

/** Paths built from the pieces that make path rules interesting, from a fixed seed. */
function samples(count: number, seed: number): string[] {
  const pieces = [
    "a",
    "bc",
    ".",
    "..",
    "...",
    "/",
    "//",
    "\\",
    "\\\\",
    "C:",
    "c:",
    "x.y",
    ".z",
    " ",
    "?",
    ":",
  ];
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out = [
    "",
    ".",
    "..",
    "/",
    "\\",
    "//",
    "\\\\server\\share",
    "//server/share/x",
    "C:",
    "C:\\",
  ];
  for (let i = 0; i < count; i++) {
    let s = "";
    const n = Math.floor(next() * 7);
    for (let j = 0; j < n; j++) s += pieces[Math.floor(next() * pieces.length)];
    out.push(s);
  }
  return out;
}

function agree(name: string, ours: PathRules, node: typeof posix) {
  Deno.test(`${name}: join, basename, dirname, extname and isAbsolute give node:path's results`, () => {
    const paths = samples(4000, name.length);
    assert.equal(ours.delimiter, node.delimiter);
    for (const [i, p] of paths.entries()) {
      const q = paths[(i * 7 + 3) % paths.length];
      const r = paths[(i * 13 + 5) % paths.length];
      const what = JSON.stringify([p, q, r]);
      assert.equal(ours.join(p, q, r), node.join(p, q, r), `join ${what}`);
      assert.equal(ours.join(p), node.join(p), `join ${what}`);
      assert.equal(ours.basename(p), node.basename(p), `basename ${what}`);
      assert.equal(ours.basename(p, q), node.basename(p, q), `basename ${what}`);
      assert.equal(ours.basename(p, ".y"), node.basename(p, ".y"), `basename ${what}`);
      assert.equal(ours.dirname(p), node.dirname(p), `dirname ${what}`);
      assert.equal(ours.extname(p), node.extname(p), `extname ${what}`);
      assert.equal(ours.isAbsolute(p), node.isAbsolute(p), `isAbsolute ${what}`);
    }
    assert.equal(ours.join(), node.join());
  });
}

agree("POSIX rules", posixPath, posix);
agree("Windows rules", windowsPath, win32);
