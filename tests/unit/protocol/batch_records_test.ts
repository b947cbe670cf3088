import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type BatchRecord,
  DELETE_HORIZON_BIT,
  readBatchRecords,
  writeBatch,
} from "../../../lib/protocol/record_codec.ts";
import { validateBatch } from "../../../lib/protocol/record_batch.ts";
import { compress, decompress } from "../../../lib/protocol/compression.ts";

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const recordArb = fc.record({
  key: fc.option(bytes(40), { nil: null }),
  value: fc.option(bytes(300), { nil: null }),
  tsOffset: fc.integer({ min: -5000, max: 5000 }),
  headers: fc.array(fc.tuple(fc.string({ maxLength: 10 }), fc.option(bytes(20), { nil: null })), {
    maxLength: 3,
  }),
});

/** The encoded headers section of a record (varint count, then key and value). */
function encodeHeaders(headers: [string, Uint8Array | null][]): Uint8Array {
  const out: number[] = [];
  const varint = (v: number) => {
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    while (z >= 0x80) {
      out.push((z & 0x7f) | 0x80);
      z = Math.floor(z / 128);
    }
    out.push(z);
  };
  varint(headers.length);
  for (const [k, v] of headers) {
    const kb = new TextEncoder().encode(k);
    varint(kb.length);
    out.push(...kb);
    if (v === null) varint(-1);
    else {
      varint(v.length);
      out.push(...v);
    }
  }
  return new Uint8Array(out);
}

function template(codec: number, count: number, logAppendTime = false) {
  return {
    baseOffset: 1000,
    batchLength: 0,
    sizeInBytes: 0,
    partitionLeaderEpoch: 7,
    magic: 2,
    crc: 0,
    attributes: codec | (logAppendTime ? 0x08 : 0),
    lastOffsetDelta: count - 1 + 3, // the last offset is kept even when its record is gone
    baseTimestamp: 1_700_000_000_000,
    maxTimestamp: 1_700_000_009_999,
    producerId: 42n,
    producerEpoch: 3,
    baseSequence: 17,
    recordCount: count,
  };
}

Deno.test("writeBatch/readBatchRecords round-trip every codec, subsets keep their offsets (property)", () => {
  fc.assert(
    fc.property(
      fc.array(recordArb, { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 0, max: 4 }),
      fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
      (raw, codec, keep) => {
        const t = template(codec, raw.length);
        const records: BatchRecord[] = raw.map((r, i) => ({
          offset: t.baseOffset + i,
          timestampMs: t.baseTimestamp + r.tsOffset,
          attributes: 0,
          key: r.key,
          value: r.value,
          headers: encodeHeaders(r.headers),
        }));
        const kept = records.filter((_, i) => keep[i]);
        const batch = writeBatch(t, kept);
        const h = validateBatchOrEmpty(batch);
        assert.equal(h.baseOffset, t.baseOffset);
        assert.equal(h.lastOffsetDelta, t.lastOffsetDelta);
        assert.equal(h.attributes & 0x07, codec);
        assert.equal(h.producerId, 42n);
        const back = readBatchRecords(batch);
        assert.deepEqual(back.records, kept);
      },
    ),
    { numRuns: 150 },
  );
});

/** As a follower checks what it fetches: thinned and empty batches are valid there. */
function validateBatchOrEmpty(batch: Uint8Array) {
  return validateBatch(batch, "stored");
}

Deno.test("writeBatch with a delete horizon sets the attribute and the base timestamp, keeping record timestamps", () => {
  for (const codec of [0, 1, 2, 3, 4]) {
    const t = template(codec, 2);
    const records: BatchRecord[] = [0, 1].map((i) => ({
      offset: 1000 + i,
      timestampMs: t.baseTimestamp + i * 10,
      attributes: 0,
      key: new Uint8Array([i]),
      value: i === 1 ? null : new Uint8Array([9]),
      headers: new Uint8Array([0]),
    }));
    const horizon = t.baseTimestamp + 86_400_000;
    const batch = writeBatch(t, records, { deleteHorizonMs: horizon });
    const h = validateBatch(batch, "stored");
    assert.equal(h.attributes & DELETE_HORIZON_BIT, DELETE_HORIZON_BIT);
    assert.equal(h.baseTimestamp, horizon);
    assert.deepEqual(readBatchRecords(batch).records, records);
  }
});

Deno.test("compress/decompress round-trip each codec, and snappy reads raw blocks as well as snappy-java framing", () => {
  const data = new Uint8Array(200_000).map((_, i) => (i * 31) % 253);
  for (const codec of [0, 1, 2, 3, 4]) {
    assert.deepEqual(decompress(codec, compress(codec, data)), data, `codec ${codec}`);
    assert.deepEqual(decompress(codec, compress(codec, new Uint8Array(0))), new Uint8Array(0));
  }
  const framed = compress(2, data);
  assert.deepEqual([...framed.subarray(0, 8)], [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0]);
  // A raw snappy block (no framing), as some clients send: the first block of the frame.
  const small = new Uint8Array(1000).fill(5);
  const rawBlock = compress(2, small).subarray(20);
  assert.deepEqual(decompress(2, rawBlock), small);
  assert.throws(() => decompress(1, new Uint8Array([1, 2, 3])), /Cannot decompress a gzip batch/);
});
