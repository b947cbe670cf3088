/**
 * Test helper: encodes valid RecordBatch v2 batches (records with keys, values, headers,
 * varints and a CRC32C from lib/util/crc32c.ts). Shared by other test folders.
 *
 * With `compression` set, only the attribute bits change: the records section stays
 * uncompressed, which is enough for code that stores batches without decompressing them
 * (the CRC is valid, `validateBatch` accepts it) but not for a real consumer.
 */
import { crc32c } from "../../../lib/util/crc32c.ts";
import { writeBatch } from "../../../lib/protocol/record_codec.ts";

/** One record of {@linkcode buildBatch}. */
export interface TestRecord {
  key?: Uint8Array | string | null;
  value: Uint8Array | string | null;
  headers?: { key: string; value: Uint8Array | string | null }[];
  /** Defaults to the batch base timestamp. */
  timestampMs?: number;
}

/** Options of {@linkcode buildBatch}. */
export interface BuildBatchOptions {
  records: TestRecord[];
  /** Defaults to the smallest record timestamp, else 1_700_000_000_000. */
  baseTimestampMs?: number;
  /** Codec id (0 none .. 4 zstd): attribute bits only, see the module doc. */
  compression?: number;
  /** Set the LogAppendTime attribute bit. */
  logAppendTime?: boolean;
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
}

const encoder = new TextEncoder();

class Writer {
  #buf = new Uint8Array(256);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  int8(v: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = v & 0xff;
  }

  /** Zig-zag varint/varlong of any safe integer. */
  varint(v: number): void {
    let zz = v >= 0 ? v * 2 : -v * 2 - 1;
    do {
      let b = zz % 128;
      zz = Math.floor(zz / 128);
      if (zz > 0) b |= 0x80;
      this.int8(b);
    } while (zz > 0);
  }

  nullableBytes(b: Uint8Array | string | null | undefined): void {
    if (b === null || b === undefined) {
      this.varint(-1);
      return;
    }
    const bytes = typeof b === "string" ? encoder.encode(b) : b;
    this.varint(bytes.length);
    this.bytes(bytes);
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Encodes one valid, uncompressed (unless `compression` is set) RecordBatch v2. */
export function buildBatch(options: BuildBatchOptions): Uint8Array {
  const { records } = options;
  if (records.length === 0) throw new RangeError("Cannot build a batch: no records");
  const stamps = records.map((r) => r.timestampMs).filter((t): t is number => t !== undefined);
  const baseTimestamp = options.baseTimestampMs ??
    (stamps.length > 0 ? Math.min(...stamps) : 1_700_000_000_000);
  let maxTimestamp = -Infinity;
  const body = new Writer();
  records.forEach((r, i) => {
    const ts = r.timestampMs ?? baseTimestamp;
    if (ts > maxTimestamp) maxTimestamp = ts;
    const rec = new Writer();
    rec.int8(0); // attributes
    rec.varint(ts - baseTimestamp);
    rec.varint(i);
    rec.nullableBytes(r.key);
    rec.nullableBytes(r.value);
    const headers = r.headers ?? [];
    rec.varint(headers.length);
    for (const h of headers) {
      rec.nullableBytes(h.key);
      rec.nullableBytes(h.value);
    }
    const bytes = rec.finish();
    body.varint(bytes.length);
    body.bytes(bytes);
  });
  const recordBytes = body.finish();
  const out = new Uint8Array(61 + recordBytes.length);
  const v = new DataView(out.buffer);
  v.setBigInt64(0, BigInt(options.baseOffset ?? 0));
  v.setInt32(8, out.length - 12);
  v.setInt32(12, options.partitionLeaderEpoch ?? -1);
  v.setInt8(16, 2);
  const attributes = (options.compression ?? 0) | (options.logAppendTime ? 0x08 : 0);
  v.setInt16(21, attributes);
  v.setInt32(23, records.length - 1);
  v.setBigInt64(27, BigInt(baseTimestamp));
  v.setBigInt64(35, BigInt(maxTimestamp));
  v.setBigInt64(43, options.producerId ?? -1n);
  v.setInt16(51, options.producerEpoch ?? -1);
  v.setInt32(53, options.baseSequence ?? -1);
  v.setInt32(57, records.length);
  out.set(recordBytes, 61);
  v.setUint32(17, crc32c(out.subarray(21)));
  return out;
}

/**
 * A batch of `count` records whose values are `valueBytes` bytes each (filled with a
 * pattern derived from `seed`), timestamps `timestampMs + i`.
 */
export function buildSizedBatch(
  count: number,
  valueBytes: number,
  options: { seed?: number; timestampMs?: number } = {},
): Uint8Array {
  const seed = options.seed ?? 0;
  const base = options.timestampMs ?? 1_700_000_000_000;
  const records: TestRecord[] = [];
  for (let i = 0; i < count; i++) {
    const value = new Uint8Array(valueBytes);
    for (let j = 0; j < valueBytes; j++) value[j] = (seed * 31 + i * 7 + j) & 0xff;
    records.push({ key: `k${i}`, value, timestampMs: base + i });
  }
  return buildBatch({ records });
}

/**
 * A producer's batch (offsets from 0, no producer id) of keyed records compressed for
 * real with `codec` (0 none .. 4 zstd), record i stamped `timestampMs + i`.
 */
export function buildCodecBatch(
  records: { key: Uint8Array; value: Uint8Array | null }[],
  codec: number,
  timestampMs = 1_700_000_000_000,
): Uint8Array {
  return writeBatch(
    {
      baseOffset: 0,
      batchLength: 0,
      sizeInBytes: 0,
      partitionLeaderEpoch: 0,
      magic: 2,
      crc: 0,
      attributes: codec,
      lastOffsetDelta: records.length - 1,
      baseTimestamp: timestampMs,
      maxTimestamp: timestampMs + records.length - 1,
      producerId: -1n,
      producerEpoch: -1,
      baseSequence: -1,
      recordCount: records.length,
    },
    records.map((r, i) => ({
      offset: i,
      timestampMs: timestampMs + i,
      attributes: 0,
      key: r.key,
      value: r.value,
      headers: new Uint8Array([0]),
    })),
  );
}
