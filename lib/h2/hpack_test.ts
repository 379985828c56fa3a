import assert from "node:assert/strict";
import { encodeHeaderBlock, type HeaderField, HpackDecoder, HpackError } from "./hpack.ts";

const hex = (s: string) =>
  new Uint8Array(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));
const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

/** RFC 7541 C.4: requests, Huffman-coded, one table across the three. */
Deno.test("hpack: RFC 7541 C.4 requests with Huffman coding", () => {
  const d = new HpackDecoder(4096);
  const base: HeaderField[] = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [
    ":authority",
    "www.example.com",
  ]];
  assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), base);
  assert.deepEqual(d.tableSize, 57);
  assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")), [...base, [
    "cache-control",
    "no-cache",
  ]]);
  assert.deepEqual(d.tableSize, 110);
  assert.deepEqual(
    d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")),
    [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [
      ":authority",
      "www.example.com",
    ], ["custom-key", "custom-value"]],
  );
  assert.deepEqual(d.tableSize, 164);
});

/** RFC 7541 C.6: responses, Huffman-coded, a 256-octet table, so entries are evicted. */
Deno.test("hpack: RFC 7541 C.6 responses with Huffman coding and eviction", () => {
  const d = new HpackDecoder(256);
  assert.deepEqual(
    d.decode(hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
      2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`)),
    [[":status", "302"], ["cache-control", "private"], ["date", date1], [
      "location",
      "https://www.example.com",
    ]],
  );
  assert.deepEqual(d.tableSize, 222);
  assert.deepEqual(d.decode(hex("4883 640e ffc1 c0bf")), [
    [":status", "307"],
    [
      "cache-control",
      "private",
    ],
    ["date", date1],
    ["location", "https://www.example.com"],
  ]);
  assert.deepEqual(d.tableSize, 222);
  assert.deepEqual(
    d.decode(hex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
      77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
      9587 3160 65c0 03ed 4ee5 b106 3d50 07`)),
    [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
      [
        "location",
        "https://www.example.com",
      ],
      ["content-encoding", "gzip"],
      ["set-cookie", cookie],
    ],
  );
  assert.deepEqual(d.tableSize, 215);
});

Deno.test("hpack: malformed blocks are compression errors, never a wrong header", () => {
  const bad = [
    hex("80"), // index 0
    hex("be"), // index 62: the dynamic table is empty
    hex("ffffffffff0f"), // integer overflow
    hex("0004"), // name index 4, value missing
    hex("4003 6162"), // literal name shorter than its length
    hex("0085 ffffffffff 00"), // Huffman: a string holding EOS
    hex("0081 00 00"), // Huffman: padding of zeros
    hex("3fe21f"), // size update beyond the 4096 we allowed
    hex("8820"), // size update after a field
  ];
  for (const block of bad) assert.throws(() => new HpackDecoder().decode(block), HpackError);
});

Deno.test("hpack: the encoder's blocks decode to the same fields and leave the table empty", () => {
  const fields: HeaderField[] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/contenox.transport.v1.Compute/Health"],
    [":authority", "127.0.0.1:40517"],
    ["content-type", "application/grpc+contenoxtransportjson"],
    ["te", "trailers"],
    ["grpc-timeout", "5000m"],
    ["x-contenox-owner-instance", "5f0c3c1e-0000-4000-8000-" + "a".repeat(200)],
  ];
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(encodeHeaderBlock(fields)), fields);
  assert.deepEqual(d.tableSize, 0);
  assert.deepEqual([...encodeHeaderBlock(fields).subarray(0, 2)], [0x83, 0x86]);
  assert.throws(() => encodeHeaderBlock([["x", "€"]]), TypeError);
});
