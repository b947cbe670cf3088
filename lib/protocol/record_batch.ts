/**
 * RecordBatch v2 (magic 2) header access and validation, on raw bytes.
 *
 * The hot paths never decode records: a batch is checked (lengths, magic, CRC32C, record
 * count) and stored byte for byte. Only the fields outside the CRC (base offset, partition
 * leader epoch) are rewritten in place; LogAppendTime rewrites the attributes and max
 * timestamp and recomputes the CRC.
 *
 * Layout (offsets in bytes):
 * ```
 *  0 baseOffset int64        | 12 partitionLeaderEpoch int32 | 16 magic int8
 *  8 batchLength int32       | 17 crc uint32 (covers 21..end)
 * 21 attributes int16        | 23 lastOffsetDelta int32      | 27 baseTimestamp int64
 * 35 maxTimestamp int64      | 43 producerId int64           | 51 producerEpoch int16
 * 53 baseSequence int32      | 57 recordCount int32          | 61 records...
 * ```
 */
import { crc32c } from "../util/crc32c.ts";
import { CorruptBatchError } from "../util/errors.ts";

/** Bytes before the records: the fixed header. */
export const BATCH_HEADER_SIZE = 61;
/** Bytes of baseOffset + batchLength: the part not counted in batchLength. */
export const BATCH_LOG_OVERHEAD = 12;
/** Offset of the CRC-covered region. */
const CRC_START = 21;

export const Compression = { NONE: 0, GZIP: 1, SNAPPY: 2, LZ4: 3, ZSTD: 4 } as const;
const TIMESTAMP_TYPE_BIT = 0x08;
const TRANSACTIONAL_BIT = 0x10;
const CONTROL_BIT = 0x20;

/** The decoded fixed header of one batch. */
export interface BatchHeader {
  baseOffset: number;
  /** Bytes after the batchLength field. */
  batchLength: number;
  /** Whole batch size on the wire and on disk: `batchLength + 12`. */
  sizeInBytes: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Reads the header of the batch at `pos`. Throws {@linkcode CorruptBatchError} if fewer
 * than {@linkcode BATCH_HEADER_SIZE} bytes remain. Does not check the CRC.
 */
export function readBatchHeader(buf: Uint8Array, pos = 0): BatchHeader {
  if (buf.length - pos < BATCH_HEADER_SIZE) {
    throw new CorruptBatchError(
      `Cannot read batch header at ${pos}: ${
        buf.length - pos
      } bytes remain, need ${BATCH_HEADER_SIZE}`,
    );
  }
  const v = view(buf);
  const batchLength = v.getInt32(pos + 8);
  return {
    baseOffset: Number(v.getBigInt64(pos)),
    batchLength,
    sizeInBytes: batchLength + BATCH_LOG_OVERHEAD,
    partitionLeaderEpoch: v.getInt32(pos + 12),
    magic: v.getInt8(pos + 16),
    crc: v.getUint32(pos + 17),
    attributes: v.getInt16(pos + 21),
    lastOffsetDelta: v.getInt32(pos + 23),
    baseTimestamp: Number(v.getBigInt64(pos + 27)),
    maxTimestamp: Number(v.getBigInt64(pos + 35)),
    producerId: v.getBigInt64(pos + 43),
    producerEpoch: v.getInt16(pos + 51),
    baseSequence: v.getInt32(pos + 53),
    recordCount: v.getInt32(pos + 57),
  };
}

/** Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). */
export function compressionOf(h: BatchHeader): number {
  return h.attributes & 0x07;
}

/** True if the batch carries LogAppendTime timestamps. */
export function isLogAppendTime(h: BatchHeader): boolean {
  return (h.attributes & TIMESTAMP_TYPE_BIT) !== 0;
}

/** True for transactional batches. */
export function isTransactional(h: BatchHeader): boolean {
  return (h.attributes & TRANSACTIONAL_BIT) !== 0;
}

/** True for control batches (transaction markers). */
export function isControl(h: BatchHeader): boolean {
  return (h.attributes & CONTROL_BIT) !== 0;
}

/** Offset of the last record in the batch. */
export function lastOffsetOf(h: BatchHeader): number {
  return h.baseOffset + h.lastOffsetDelta;
}

/** The CRC32C the batch at `pos` (whose total size is `size`) should carry. */
function computeCrc(buf: Uint8Array, pos: number, size: number): number {
  return crc32c(buf.subarray(pos + CRC_START, pos + size));
}

/**
 * Validates one complete batch occupying exactly `batch`: magic 2, consistent lengths,
 * CRC32C, and for uncompressed batches the records actually present.
 *
 * As a producer sent it (`produced`, the default): a positive record count that agrees
 * with lastOffsetDelta, offset deltas 0..n-1. As a log stores it (`stored`: what a
 * follower fetches, which compaction may have thinned): any record count from 0, offset
 * deltas increasing up to lastOffsetDelta.
 *
 * @returns the parsed header
 */
export function validateBatch(
  batch: Uint8Array,
  kind: "produced" | "stored" = "produced",
): BatchHeader {
  const h = readBatchHeader(batch, 0);
  if (h.magic !== 2) {
    throw new CorruptBatchError(
      `Unsupported record batch magic ${h.magic}: only magic 2 is accepted`,
    );
  }
  if (h.sizeInBytes !== batch.length) {
    throw new CorruptBatchError(
      `Batch length ${h.batchLength} does not match the ${
        batch.length - BATCH_LOG_OVERHEAD
      } bytes present`,
    );
  }
  if (kind === "produced") {
    if (h.recordCount <= 0) {
      throw new CorruptBatchError(`Batch record count ${h.recordCount} must be positive`);
    }
    if (h.lastOffsetDelta !== h.recordCount - 1) {
      throw new CorruptBatchError(
        `Batch lastOffsetDelta ${h.lastOffsetDelta} does not match record count ${h.recordCount}`,
      );
    }
  } else if (h.recordCount < 0 || h.lastOffsetDelta < 0 || h.recordCount > h.lastOffsetDelta + 1) {
    throw new CorruptBatchError(
      `Batch record count ${h.recordCount} does not fit lastOffsetDelta ${h.lastOffsetDelta}`,
    );
  }
  const actual = computeCrc(batch, 0, batch.length);
  if (actual !== h.crc) {
    throw new CorruptBatchError(`Batch CRC mismatch: stored ${h.crc}, computed ${actual}`);
  }
  if (compressionOf(h) === Compression.NONE) validateUncompressedRecords(batch, h, kind);
  else if (compressionOf(h) > Compression.ZSTD) {
    throw new CorruptBatchError(`Unknown compression codec ${compressionOf(h)}`);
  }
  return h;
}

/**
 * Walks the length-prefixed records of an uncompressed batch without decoding them:
 * the count must match, each record must fit, offset deltas must run 0..n-1 (produced)
 * or increase up to lastOffsetDelta (stored), and the records must fill the batch exactly.
 */
function validateUncompressedRecords(
  batch: Uint8Array,
  h: BatchHeader,
  kind: "produced" | "stored",
): void {
  let pos = BATCH_HEADER_SIZE;
  let previous = -1;
  for (let i = 0; i < h.recordCount; i++) {
    const [len, afterLen] = readVarint(batch, pos);
    const end = afterLen + len;
    if (len < 0 || end > batch.length) {
      throw new CorruptBatchError(`Record ${i} of ${h.recordCount} overruns the batch`);
    }
    // record: attributes int8, timestampDelta varlong, offsetDelta varint, ...
    const [, afterTs] = readVarint(batch, afterLen + 1);
    const [offsetDelta] = readVarint(batch, afterTs);
    const fits = kind === "produced"
      ? offsetDelta === i
      : offsetDelta > previous && offsetDelta <= h.lastOffsetDelta;
    if (!fits) throw new CorruptBatchError(`Record ${i} has offset delta ${offsetDelta}`);
    previous = offsetDelta;
    pos = end;
  }
  if (pos !== batch.length) {
    throw new CorruptBatchError(
      `Batch has ${batch.length - pos} bytes after its ${h.recordCount} records`,
    );
  }
}

/** Zig-zag varint (up to 64-bit range, returned as a JS number) → [value, nextPos]. */
function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new CorruptBatchError("Truncated varint in record");
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      // zig-zag decode without 32-bit overflow
      const value = result % 2 === 0 ? result / 2 : -(result + 1) / 2;
      return [value, pos];
    }
    mul *= 128;
  }
  throw new CorruptBatchError("Varint longer than 10 bytes in record");
}

/**
 * Splits a produce request's `records` bytes into the batches it holds (subarrays, no
 * copy). Throws {@linkcode CorruptBatchError} if the bytes do not divide into whole batches.
 */
export function splitBatches(records: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < records.length) {
    if (records.length - pos < BATCH_LOG_OVERHEAD) {
      throw new CorruptBatchError(`Trailing ${records.length - pos} bytes are not a batch`);
    }
    const batchLength = view(records).getInt32(pos + 8);
    const size = batchLength + BATCH_LOG_OVERHEAD;
    if (batchLength < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || pos + size > records.length) {
      throw new CorruptBatchError(`Batch at ${pos} has invalid length ${batchLength}`);
    }
    out.push(records.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

/** Rewrites the base offset in place (outside the CRC). */
export function setBaseOffset(batch: Uint8Array, baseOffset: number): void {
  view(batch).setBigInt64(0, BigInt(baseOffset));
}

/** Rewrites the partition leader epoch in place (outside the CRC). */
export function setPartitionLeaderEpoch(batch: Uint8Array, epoch: number): void {
  view(batch).setInt32(12, epoch);
}

/**
 * Marks the batch as LogAppendTime with `timestampMs` as its max timestamp (Kafka keeps
 * the base timestamp and record deltas, and readers use maxTimestamp), then recomputes
 * the CRC.
 */
export function setLogAppendTime(batch: Uint8Array, timestampMs: number): void {
  const v = view(batch);
  v.setInt16(21, v.getInt16(21) | TIMESTAMP_TYPE_BIT);
  v.setBigInt64(35, BigInt(timestampMs));
  v.setUint32(17, computeCrc(batch, 0, batch.length));
}

/** True if the CRC of the batch at `pos` (of total size `size`) is correct. */
export function batchCrcValid(buf: Uint8Array, pos: number, size: number): boolean {
  return view(buf).getUint32(pos + 17) === computeCrc(buf, pos, size);
}
