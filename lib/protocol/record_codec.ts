/**
 * Encoding and decoding of the records inside an uncompressed RecordBatch v2. The broker
 * never needs this on the produce/fetch hot paths (batches move as bytes); it is for
 * records the broker writes itself (group metadata and offsets in __consumer_offsets)
 * and reads back on load.
 */
import { ByteReader, ByteWriter, ProtocolDecodeError } from "./bytes.ts";
import { crc32c } from "../util/crc32c.ts";
import { compress, decompress } from "./compression.ts";
import {
  BATCH_HEADER_SIZE,
  type BatchHeader,
  compressionOf,
  readBatchHeader,
} from "./record_batch.ts";

/** One record's content. */
export interface KafkaRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers?: { key: string; value: Uint8Array | null }[];
  timestampMs: number;
}

/** A record read back, with its absolute offset. */
export interface DecodedRecord extends KafkaRecord {
  offset: number;
  headers: { key: string; value: Uint8Array | null }[];
}

const encoder = new TextEncoder();

/** Producer fields of a batch the broker writes itself (transactional offsets, markers). */
export interface BatchProducer {
  producerId: bigint;
  producerEpoch: number;
  /** -1 for a coordinator's records (they carry no sequence). */
  baseSequence?: number;
  transactional?: boolean;
  /** A control batch (transaction marker). */
  control?: boolean;
}

/**
 * Builds an uncompressed RecordBatch v2 (CreateTime, no producer id unless `producer` says)
 * holding `records`, with base offset 0 (the log assigns the real one).
 */
export function encodeRecordBatch(
  records: readonly KafkaRecord[],
  producer?: BatchProducer,
): Uint8Array {
  if (records.length === 0) throw new RangeError("Cannot encode an empty record batch");
  const baseTs = Math.min(...records.map((r) => r.timestampMs));
  const maxTs = Math.max(...records.map((r) => r.timestampMs));
  const body = new ByteWriter(1024);
  records.forEach((r, i) => {
    const rec = new ByteWriter(64);
    rec.int8(0); // attributes
    rec.varlong(BigInt(r.timestampMs - baseTs));
    rec.varint(i);
    writeVarBytes(rec, r.key);
    writeVarBytes(rec, r.value);
    const headers = r.headers ?? [];
    rec.varint(headers.length);
    for (const h of headers) {
      writeVarBytes(rec, encoder.encode(h.key));
      writeVarBytes(rec, h.value);
    }
    const bytes = rec.finish();
    body.varint(bytes.length);
    body.raw(bytes);
  });
  const recordBytes = body.finish();
  const batch = new Uint8Array(BATCH_HEADER_SIZE + recordBytes.length);
  const v = new DataView(batch.buffer);
  v.setBigInt64(0, 0n);
  v.setInt32(8, batch.length - 12);
  v.setInt32(12, -1); // partition leader epoch: set by the log
  v.setInt8(16, 2);
  v.setInt16(21, (producer?.transactional ? 0x10 : 0) | (producer?.control ? 0x20 : 0));
  v.setInt32(23, records.length - 1);
  v.setBigInt64(27, BigInt(baseTs));
  v.setBigInt64(35, BigInt(maxTs));
  v.setBigInt64(43, producer?.producerId ?? -1n);
  v.setInt16(51, producer?.producerEpoch ?? -1);
  v.setInt32(53, producer?.baseSequence ?? -1);
  v.setInt32(57, records.length);
  batch.set(recordBytes, BATCH_HEADER_SIZE);
  v.setUint32(17, crc32c(batch.subarray(21)));
  return batch;
}

function writeVarBytes(w: ByteWriter, b: Uint8Array | null): void {
  if (b === null) {
    w.varint(-1);
    return;
  }
  w.varint(b.length);
  w.raw(b);
}

function readVarBytes(r: ByteReader): Uint8Array | null {
  const len = r.varint();
  if (len < 0) return null;
  return r.raw(len);
}

/**
 * Decodes every record of the uncompressed batches laid end to end in `bytes` (as a
 * fetch or log read returns them; a trailing partial batch is ignored). Throws
 * {@linkcode ProtocolDecodeError} for compressed batches or malformed records.
 */
export function decodeRecords(bytes: Uint8Array): DecodedRecord[] {
  const out: DecodedRecord[] = [];
  const decoder = new TextDecoder();
  let pos = 0;
  while (pos + BATCH_HEADER_SIZE <= bytes.length) {
    const h = readBatchHeader(bytes, pos);
    if (pos + h.sizeInBytes > bytes.length) break;
    if (compressionOf(h) !== 0) {
      throw new ProtocolDecodeError(
        `Cannot decode records of a compressed batch at offset ${h.baseOffset}`,
      );
    }
    const r = new ByteReader(bytes.subarray(pos + BATCH_HEADER_SIZE, pos + h.sizeInBytes));
    for (let i = 0; i < h.recordCount; i++) {
      const len = r.varint();
      const end = r.offset + len;
      r.int8();
      const tsDelta = Number(r.varlong());
      const offsetDelta = r.varint();
      const key = readVarBytes(r);
      const value = readVarBytes(r);
      const headerCount = r.varint();
      const headers: { key: string; value: Uint8Array | null }[] = [];
      for (let j = 0; j < headerCount; j++) {
        const k = readVarBytes(r);
        headers.push({ key: k === null ? "" : decoder.decode(k), value: readVarBytes(r) });
      }
      if (r.offset !== end) {
        throw new ProtocolDecodeError(`Record ${i} of batch ${h.baseOffset} has a bad length`);
      }
      const timestampMs = (h.attributes & 0x08) !== 0 ? h.maxTimestamp : h.baseTimestamp + tsDelta;
      out.push({ offset: h.baseOffset + offsetDelta, key, value, headers, timestampMs });
    }
    pos += h.sizeInBytes;
  }
  return out;
}

/**
 * One record of a batch as the log cleaner and the compacted-topic checks see it: absolute
 * offset and timestamp, key and value, and the headers section kept as encoded.
 */
export interface BatchRecord {
  offset: number;
  timestampMs: number;
  /** Record attributes (unused by Kafka today; kept). */
  attributes: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  /** The encoded headers: varint count, then each header. */
  headers: Uint8Array;
}

/** Batch attribute bit: the base timestamp is the delete horizon of its tombstones (KIP-534). */
export const DELETE_HORIZON_BIT = 0x40;

/**
 * Every record of one complete batch (decompressed when it is compressed), with absolute
 * offsets and timestamps (CreateTime: base timestamp + delta; LogAppendTime: the batch's
 * max timestamp).
 *
 * @throws {ProtocolDecodeError} when the records are malformed or cannot be decompressed
 */
export function readBatchRecords(
  batch: Uint8Array,
): { header: BatchHeader; records: BatchRecord[] } {
  const h = readBatchHeader(batch, 0);
  const body = decompress(compressionOf(h), batch.subarray(BATCH_HEADER_SIZE, h.sizeInBytes));
  const r = new ByteReader(body);
  const records: BatchRecord[] = [];
  const logAppendTime = (h.attributes & 0x08) !== 0;
  for (let i = 0; i < h.recordCount; i++) {
    const len = r.varint();
    const start = r.offset;
    const attributes = r.int8();
    const tsDelta = Number(r.varlong());
    const offsetDelta = r.varint();
    const key = readVarBytes(r);
    const value = readVarBytes(r);
    const headersStart = r.offset;
    const headerCount = r.varint();
    for (let j = 0; j < headerCount; j++) {
      readVarBytes(r);
      readVarBytes(r);
    }
    const headers = body.subarray(headersStart, r.offset);
    if (r.offset !== start + len) {
      throw new ProtocolDecodeError(`Record ${i} of batch ${h.baseOffset} has a bad length`);
    }
    records.push({
      offset: h.baseOffset + offsetDelta,
      timestampMs: logAppendTime ? h.maxTimestamp : h.baseTimestamp + tsDelta,
      attributes,
      key,
      value,
      headers,
    });
  }
  if (r.offset !== body.length) {
    throw new ProtocolDecodeError(`Batch ${h.baseOffset} has bytes after its records`);
  }
  return { header: h, records };
}

/**
 * A batch like `template` (same base offset, last offset, leader epoch, codec, timestamp
 * type, producer fields) holding `records` (a subset of the template's, in order; none is
 * allowed: an empty batch keeps a producer's last sequence). With `deleteHorizonMs`, the
 * base timestamp becomes the tombstones' delete horizon (KIP-534); record timestamps
 * stay what they were. Compressed with the template's codec.
 */
export function writeBatch(
  template: BatchHeader,
  records: readonly BatchRecord[],
  options: { deleteHorizonMs?: number } = {},
): Uint8Array {
  const logAppendTime = (template.attributes & 0x08) !== 0;
  const horizon = options.deleteHorizonMs;
  let attributes = template.attributes;
  let baseTimestamp = template.baseTimestamp;
  if (horizon !== undefined) {
    attributes |= DELETE_HORIZON_BIT;
    baseTimestamp = horizon;
  } else if ((attributes & DELETE_HORIZON_BIT) === 0 && records.length > 0 && !logAppendTime) {
    baseTimestamp = Math.min(...records.map((r) => r.timestampMs));
  }
  const body = new ByteWriter(1024);
  for (const r of records) {
    const rec = new ByteWriter(64);
    rec.int8(r.attributes);
    rec.varlong(BigInt(logAppendTime ? 0 : r.timestampMs - baseTimestamp));
    rec.varint(r.offset - template.baseOffset);
    writeVarBytes(rec, r.key);
    writeVarBytes(rec, r.value);
    rec.raw(r.headers);
    const bytes = rec.finish();
    body.varint(bytes.length);
    body.raw(bytes);
  }
  const recordBytes = compress(compressionOf(template), body.finish());
  const batch = new Uint8Array(BATCH_HEADER_SIZE + recordBytes.length);
  const v = new DataView(batch.buffer);
  const maxTimestamp = logAppendTime || records.length === 0
    ? template.maxTimestamp
    : Math.max(...records.map((r) => r.timestampMs));
  v.setBigInt64(0, BigInt(template.baseOffset));
  v.setInt32(8, batch.length - 12);
  v.setInt32(12, template.partitionLeaderEpoch);
  v.setInt8(16, 2);
  v.setInt16(21, attributes);
  v.setInt32(23, template.lastOffsetDelta);
  v.setBigInt64(27, BigInt(baseTimestamp));
  v.setBigInt64(35, BigInt(maxTimestamp));
  v.setBigInt64(43, template.producerId);
  v.setInt16(51, template.producerEpoch);
  v.setInt32(53, template.baseSequence);
  v.setInt32(57, records.length);
  batch.set(recordBytes, BATCH_HEADER_SIZE);
  v.setUint32(17, crc32c(batch.subarray(21)));
  return batch;
}

/**
 * Whether a record of the (valid) batch has no key: a compacted topic refuses such
 * batches (Kafka's INVALID_RECORD). Compressed batches are decompressed to look; the
 * records are walked, not decoded.
 */
export function batchHasNullKey(batch: Uint8Array): boolean {
  const h = readBatchHeader(batch, 0);
  const body = decompress(compressionOf(h), batch.subarray(BATCH_HEADER_SIZE, h.sizeInBytes));
  const r = new ByteReader(body);
  for (let i = 0; i < h.recordCount; i++) {
    const len = r.varint();
    const start = r.offset;
    r.int8();
    r.varlong();
    r.varint();
    if (r.varint() < 0) return true;
    r.raw(start + len - r.offset);
  }
  return false;
}

/** A transaction marker's content (the record of a control batch). */
export interface ControlMarker {
  commit: boolean;
  coordinatorEpoch: number;
}

const CONTROL_ABORT = 0;
const CONTROL_COMMIT = 1;

/**
 * A control batch holding one transaction marker (Kafka's EndTransactionMarker: key =
 * version 0, type 0 abort / 1 commit; value = version 0, coordinator epoch), transactional,
 * with the producer's id and epoch and no sequence.
 */
export function encodeControlBatch(
  marker: ControlMarker & { producerId: bigint; producerEpoch: number },
  timestampMs: number,
): Uint8Array {
  const key = new ByteWriter(4);
  key.int16(0);
  key.int16(marker.commit ? CONTROL_COMMIT : CONTROL_ABORT);
  const value = new ByteWriter(6);
  value.int16(0);
  value.int32(marker.coordinatorEpoch);
  return encodeRecordBatch([{ key: key.finish(), value: value.finish(), timestampMs }], {
    producerId: marker.producerId,
    producerEpoch: marker.producerEpoch,
    baseSequence: -1,
    transactional: true,
    control: true,
  });
}

/**
 * The transaction marker in a control batch; null for a control record of another type
 * (KRaft's leader-change and snapshot records) or one without a readable key.
 */
export function readControlMarker(batch: Uint8Array): ControlMarker | null {
  const { records } = readBatchRecords(batch);
  const r = records[0];
  if (r === undefined || r.key === null || r.key.length < 4) return null;
  const kv = new DataView(r.key.buffer, r.key.byteOffset, r.key.byteLength);
  const type = kv.getInt16(2);
  if (type !== CONTROL_ABORT && type !== CONTROL_COMMIT) return null;
  let coordinatorEpoch = -1;
  if (r.value !== null && r.value.length >= 6) {
    coordinatorEpoch = new DataView(r.value.buffer, r.value.byteOffset, r.value.byteLength)
      .getInt32(2);
  }
  return { commit: type === CONTROL_COMMIT, coordinatorEpoch };
}
