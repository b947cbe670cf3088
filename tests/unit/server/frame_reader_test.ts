import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameError, FrameReader } from "../../../lib/server/frame_reader.ts";

/** A source that hands out `data` in the given chunk sizes. */
function chunked(data: Uint8Array, sizes: number[]) {
  let pos = 0;
  let i = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      if (pos >= data.length) return Promise.resolve(null);
      const n = Math.min(p.length, sizes[i++ % sizes.length]!, data.length - pos);
      p.set(data.subarray(pos, pos + n));
      pos += n;
      return Promise.resolve(n);
    },
  };
}

function frames(payloads: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(payloads.reduce((s, p) => s + 4 + p.length, 0));
  let pos = 0;
  for (const p of payloads) {
    new DataView(out.buffer).setInt32(pos, p.length);
    out.set(p, pos + 4);
    pos += 4 + p.length;
  }
  return out;
}

Deno.test("FrameReader.next() reassembles frames from any chunking (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 8, maxLength: 200_000 }), { maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 5 }),
      async (payloads, sizes) => {
        const reader = new FrameReader(chunked(frames(payloads), sizes), 1 << 20);
        for (const p of payloads) assert.deepEqual(await reader.next(), p);
        assert.equal(await reader.next(), null);
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("FrameReader.next() takes frames of the API keys its allocator names from it (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 8, maxLength: 200_000 }), { maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 5 }),
      async (payloads, sizes) => {
        const acquired: Uint8Array[] = [];
        const reader = new FrameReader(chunked(frames(payloads), sizes), 1 << 20, {
          pooled: (apiKey) => apiKey % 2 === 0,
          acquire: (size) => {
            // Stale bytes, as a reused buffer has: every one must be overwritten.
            const b = new Uint8Array(new ArrayBuffer(size + 16), 0, size).fill(0xee);
            acquired.push(b);
            return b;
          },
        });
        for (const p of payloads) {
          const frame = await reader.next();
          assert.deepEqual(frame, p);
          const pooled = ((p[0]! << 8) | p[1]!) % 2 === 0;
          assert.equal(acquired.includes(frame!), pooled);
        }
        assert.equal(await reader.next(), null);
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("FrameReader.next() rejects bad sizes and truncated streams", async (t) => {
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "size over the limit",
      frames([new Uint8Array(0)]).map((b, i) => (i === 1 ? 0x10 : b)),
      /exceeds the limit/,
    ],
    ["negative size", new Uint8Array([0xff, 0xff, 0xff, 0xfe]), /Invalid frame size/],
    ["size below a header", new Uint8Array([0, 0, 0, 3, 1, 2, 3]), /Invalid frame size/],
    ["stream ends inside the size", new Uint8Array([0, 0]), /inside a frame size/],
    [
      "stream ends inside the frame",
      frames([new Uint8Array(100)]).subarray(0, 50),
      /inside a frame/,
    ],
  ];
  for (const [label, bytes, pattern] of cases) {
    await t.step(label, async () => {
      const reader = new FrameReader(chunked(bytes, [7]), 1000);
      await assert.rejects(
        reader.next(),
        (err: unknown) => err instanceof FrameError && pattern.test(err.message),
      );
    });
  }
});
