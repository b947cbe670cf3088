import assert from "node:assert/strict";
import fc from "fast-check";
import {
  crc32c,
  crc32cImplementation,
  crc32cPortable,
  NATIVE_MIN_BYTES,
} from "../../../lib/util/crc32c.ts";

/** Bit-at-a-time reference implementation. */
function reference(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c() gives the standard check values", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 zero bytes
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43); // RFC 3720 B.4: 32 0xff bytes
});

Deno.test("crc32c() matches the bit-by-bit definition, in one call or in pieces (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(3000), (data, cut) => {
      const at = Math.min(cut, data.length);
      assert.equal(crc32c(data), reference(data));
      assert.equal(crc32c(data.subarray(at), crc32c(data.subarray(0, at))), reference(data));
    }),
  );
});

Deno.test("crc32c() copes with unaligned subarrays", () => {
  const buf = new Uint8Array(100).map((_, i) => i * 13);
  for (let start = 0; start < 8; start++) {
    assert.equal(
      crc32c(buf.subarray(start, start + 77)),
      reference(buf.subarray(start, start + 77)),
    );
  }
});

Deno.test("crc32c() takes the native path for long inputs when run with FFI allowed", () => {
  // The suite runs with --allow-all: the native module must load, or produce slows 15x.
  assert.deepEqual(crc32cImplementation(), { native: true, reason: null });
});

Deno.test("the native and TypeScript paths agree around the size switch, on any view (property)", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: NATIVE_MIN_BYTES - 8, maxLength: 4 * NATIVE_MIN_BYTES }),
      fc.nat(15),
      fc.nat(0xffffffff),
      (data, skip, seed) => {
        const view = data.subarray(Math.min(skip, data.length));
        assert.equal(crc32c(view, seed), crc32cPortable(view, seed));
      },
    ),
  );
});
