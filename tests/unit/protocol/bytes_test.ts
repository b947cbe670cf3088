import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ByteReader,
  ByteWriter,
  ProtocolDecodeError,
  uuidToBytes,
  uuidToString,
  ZERO_UUID,
} from "../../../lib/protocol/mod.ts";

function written(f: (w: ByteWriter) => void): Uint8Array {
  const w = new ByteWriter(8);
  f(w);
  return w.finish();
}

function isDecodeError(pattern?: RegExp): (e: unknown) => boolean {
  return (e) =>
    e instanceof ProtocolDecodeError && (pattern === undefined || pattern.test(e.message));
}

Deno.test("ByteWriter/ByteReader: fixed-width integers are big-endian", () => {
  const b = written((w) => {
    w.int8(-1);
    w.int16(-2);
    w.uint16(0xfffe);
    w.int32(0x01020304);
    w.uint32(0xffffffff);
    w.int64(-3n);
    w.float64(1.5);
    w.bool(true);
  });
  assert.deepStrictEqual(
    [...b],
    [
      255,
      255,
      254,
      255,
      254,
      1,
      2,
      3,
      4,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      253,
    ]
      .concat([0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 1]),
  );
  const r = new ByteReader(b);
  assert.equal(r.int8(), -1);
  assert.equal(r.int16(), -2);
  assert.equal(r.uint16(), 0xfffe);
  assert.equal(r.int32(), 0x01020304);
  assert.equal(r.uint32(), 0xffffffff);
  assert.equal(r.int64(), -3n);
  assert.equal(r.float64(), 1.5);
  assert.equal(r.bool(), true);
  assert.equal(r.remaining, 0);
});

Deno.test("ByteReader: bool is true for any non-zero byte", () => {
  assert.equal(new ByteReader(new Uint8Array([2])).bool(), true);
  assert.equal(new ByteReader(new Uint8Array([0])).bool(), false);
});

Deno.test("unsigned varint: boundaries", async (t) => {
  const cases: [number, number[]][] = [
    [0, [0]],
    [1, [1]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [16383, [0xff, 0x7f]],
    [16384, [0x80, 0x80, 0x01]],
    [2 ** 21 - 1, [0xff, 0xff, 0x7f]],
    [2 ** 28, [0x80, 0x80, 0x80, 0x80, 0x01]],
    [2 ** 31, [0x80, 0x80, 0x80, 0x80, 0x08]],
    [0xffffffff, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [v, bytes] of cases) {
    await t.step(`${v}`, () => {
      assert.deepStrictEqual([...written((w) => w.uvarint(v))], bytes);
      assert.equal(new ByteReader(new Uint8Array(bytes)).uvarint(), v);
    });
  }
  await t.step("more than 5 bytes is rejected", () => {
    const b = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert.throws(() => new ByteReader(b).uvarint(), isDecodeError(/longer than 32 bits/));
  });
  await t.step("a 5th byte beyond 32 bits is rejected", () => {
    const b = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x1f]);
    assert.throws(() => new ByteReader(b).uvarint(), isDecodeError());
  });
  await t.step("truncated varint", () => {
    assert.throws(() => new ByteReader(new Uint8Array([0x80])).uvarint(), isDecodeError());
  });
  await t.step("out-of-range writes are RangeErrors", () => {
    assert.throws(() => written((w) => w.uvarint(-1)), RangeError);
    assert.throws(() => written((w) => w.uvarint(2 ** 32)), RangeError);
  });
});

Deno.test("signed varint and varlong: zigzag round trip", async (t) => {
  await t.step("known encodings", () => {
    assert.deepStrictEqual([...written((w) => w.varint(0))], [0]);
    assert.deepStrictEqual([...written((w) => w.varint(-1))], [1]);
    assert.deepStrictEqual([...written((w) => w.varint(1))], [2]);
    assert.deepStrictEqual([...written((w) => w.varint(-64))], [0x7f]);
    assert.deepStrictEqual([...written((w) => w.varint(64))], [0x80, 0x01]);
    assert.deepStrictEqual([...written((w) => w.varint(-(2 ** 31)))], [
      0xff,
      0xff,
      0xff,
      0xff,
      0x0f,
    ]);
    assert.deepStrictEqual([...written((w) => w.varlong(-1n))], [1]);
  });
  await t.step("int32 range", () => {
    fc.assert(fc.property(fc.integer(), (v) => {
      assert.equal(new ByteReader(written((w) => w.varint(v))).varint(), v);
    }));
  });
  await t.step("int64 range", () => {
    const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    fc.assert(fc.property(int64, (v) => {
      const r = new ByteReader(written((w) => w.varlong(v)));
      assert.equal(r.varlong(), v);
      assert.equal(r.remaining, 0);
    }));
    assert.equal(written((w) => w.varlong(-(2n ** 63n))).length, 10);
  });
  await t.step("more than 10 bytes of varlong is rejected", () => {
    const b = new Uint8Array(11).fill(0x80);
    assert.throws(() => new ByteReader(b).varlong(), isDecodeError());
  });
});

Deno.test("strings: classic and compact, nullable and not", async (t) => {
  await t.step("classic: int16 length, -1 for null", () => {
    assert.deepStrictEqual([...written((w) => w.string("ab"))], [0, 2, 97, 98]);
    assert.deepStrictEqual([...written((w) => w.string(null))], [0xff, 0xff]);
    assert.deepStrictEqual([...written((w) => w.string(""))], [0, 0]);
    assert.equal(new ByteReader(new Uint8Array([0xff, 0xff])).string(true), null);
    assert.throws(
      () => new ByteReader(new Uint8Array([0xff, 0xff])).string(false),
      isDecodeError(),
    );
    assert.throws(() => new ByteReader(new Uint8Array([0xff, 0xfe])).string(true), isDecodeError());
  });
  await t.step("compact: uvarint length + 1, 0 for null", () => {
    assert.deepStrictEqual([...written((w) => w.compactString("ab"))], [3, 97, 98]);
    assert.deepStrictEqual([...written((w) => w.compactString(null))], [0]);
    assert.deepStrictEqual([...written((w) => w.compactString(""))], [1]);
    assert.equal(new ByteReader(new Uint8Array([0])).compactString(true), null);
    assert.throws(() => new ByteReader(new Uint8Array([0])).compactString(false), isDecodeError());
  });
  await t.step("UTF-8 round trip", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 100 }), (s) => {
      const a = written((w) => w.string(s));
      assert.equal(new ByteReader(a).string(false), s);
      const b = written((w) => w.compactString(s));
      assert.equal(new ByteReader(b).compactString(false), s);
    }));
    const euro = written((w) => w.compactString("€"));
    assert.deepStrictEqual([...euro], [4, 0xe2, 0x82, 0xac]);
  });
  await t.step("claimed length longer than the input", () => {
    assert.throws(() => new ByteReader(new Uint8Array([0, 5, 97])).string(false), isDecodeError());
    assert.throws(
      () => new ByteReader(new Uint8Array([6, 97])).compactString(false),
      isDecodeError(),
    );
  });
  await t.step("a classic string over 32767 bytes cannot be written", () => {
    assert.throws(() => written((w) => w.string("é".repeat(20000))), RangeError);
  });
});

Deno.test("bytes: classic and compact, zero-copy reads", async (t) => {
  await t.step("classic: int32 length, -1 for null", () => {
    assert.deepStrictEqual([...written((w) => w.bytes(new Uint8Array([7])))], [0, 0, 0, 1, 7]);
    assert.deepStrictEqual([...written((w) => w.bytes(null))], [255, 255, 255, 255]);
    assert.equal(new ByteReader(new Uint8Array([255, 255, 255, 255])).bytes(true), null);
    assert.throws(
      () => new ByteReader(new Uint8Array([255, 255, 255, 254])).bytes(true),
      isDecodeError(),
    );
  });
  await t.step("compact", () => {
    assert.deepStrictEqual([...written((w) => w.compactBytes(new Uint8Array([7])))], [2, 7]);
    assert.deepStrictEqual([...written((w) => w.compactBytes(null))], [0]);
  });
  await t.step("reads share the input buffer", () => {
    const input = new Uint8Array([0, 0, 0, 2, 8, 9]);
    const got = new ByteReader(input).bytes(false)!;
    assert.equal(got.buffer, input.buffer);
    assert.equal(got.byteOffset, 4);
  });
  await t.step("a claimed 2 GiB length fails without allocating", () => {
    const input = new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
    assert.throws(() => new ByteReader(input).bytes(false), isDecodeError(/only 3 remain/));
  });
});

Deno.test("ByteWriter: large arrays are kept by reference and copied once at finish", () => {
  const big = new Uint8Array(100_000).fill(5);
  const w = new ByteWriter(16);
  w.int32(1);
  w.raw(big);
  w.int16(2);
  w.raw(big);
  const out = w.finish();
  assert.equal(out.length, 4 + 100_000 + 2 + 100_000);
  assert.equal(out[3], 1);
  assert.equal(out[100_005], 2);
  assert.equal(out[out.length - 1], 5);
  assert.notEqual(out.buffer, big.buffer);
});

Deno.test("ByteWriter: growing across many small writes", () => {
  fc.assert(fc.property(fc.array(fc.integer(), { maxLength: 500 }), (xs) => {
    const w = new ByteWriter(1);
    for (const x of xs) w.int32(x);
    const r = new ByteReader(w.finish());
    for (const x of xs) assert.equal(r.int32(), x);
    assert.equal(r.remaining, 0);
  }));
});

Deno.test("ByteReader: a read past the end is a ProtocolDecodeError", () => {
  const r = new ByteReader(new Uint8Array([1, 2, 3]));
  assert.throws(() => r.int32(), isDecodeError(/Cannot read 4 bytes at offset 0: only 3 remain/));
  assert.throws(() => new ByteReader(new Uint8Array(7)).int64(), isDecodeError());
  assert.throws(() => new ByteReader(new Uint8Array(15)).uuid(), isDecodeError());
});

Deno.test("ByteReader: checkCount rejects counts the remaining bytes cannot hold", () => {
  const r = new ByteReader(new Uint8Array(10));
  assert.equal(r.checkCount(2, 4, "x"), 2);
  assert.throws(() => r.checkCount(3, 4, "x"), isDecodeError(/3 items/));
  assert.throws(() => r.checkCount(2 ** 31 - 1, 1, "x"), isDecodeError());
  assert.throws(() => r.checkCount(-2, 1, "x"), isDecodeError(/negative/));
});

Deno.test("uuid: Kafka's URL-safe base64 text", async (t) => {
  await t.step("zero uuid", () => {
    assert.equal(uuidToString(new Uint8Array(16)), ZERO_UUID);
    assert.equal(ZERO_UUID, "AAAAAAAAAAAAAAAAAAAAAA");
  });
  await t.step("a known value (Kafka's Uuid.toString is URL-safe base64 without padding)", () => {
    const bytes = new Uint8Array(16).fill(0xff);
    assert.equal(uuidToString(bytes), "_____________________w");
    const b = new Uint8Array([
      0x12,
      0x34,
      0x56,
      0x78,
      0x9a,
      0xbc,
      0xde,
      0xf0,
      0x0f,
      0xed,
      0xcb,
      0xa9,
      0x87,
      0x65,
      0x43,
      0x21,
    ]);
    const expect = btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_")
      .replace(/=+$/, "");
    assert.equal(uuidToString(b), expect);
  });
  await t.step("round trip", () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
      const s = uuidToString(b);
      assert.equal(s.length, 22);
      assert.deepStrictEqual(uuidToBytes(s), b);
    }));
  });
  await t.step("bad text is a TypeError", () => {
    assert.throws(() => uuidToBytes("short"), TypeError);
    assert.throws(() => uuidToBytes("AAAAAAAAAAAAAAAAAAAAA+"), TypeError);
    assert.throws(() => uuidToBytes("AAAAAAAAAAAAAAAAAAAAAB"), TypeError); // not canonical
  });
});
