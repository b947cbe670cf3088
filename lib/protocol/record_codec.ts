/**
 * Encoding and decoding of the records inside an uncompressed RecordBatch v2. The broker
 * never needs this on the produce/fetch hot paths (batches move as bytes); it is for
 * records the broker writes itself (group metadata and offsets in __consumer_offsets)
 * and reads back on load.
 */
import { ByteReader, ByteWriter, ProtocolDecodeError } from "./bytes.ts";
import { crc32c } from "../util/crc32c.ts";
import { BATCH_HEADER_SIZE, compressionOf, readBatchHeader } from "./record_batch.ts";

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

/**
 * Builds an uncompressed RecordBatch v2 (CreateTime, no producer id) holding `records`,
 * with base offset 0 (the log assigns the real one).
 */
export function encodeRecordBatch(records: readonly KafkaRecord[]): Uint8Array {
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
  v.setInt16(21, 0);
  v.setInt32(23, records.length - 1);
  v.setBigInt64(27, BigInt(baseTs));
  v.setBigInt64(35, BigInt(maxTs));
  v.setBigInt64(43, -1n);
  v.setInt16(51, -1);
  v.setInt32(53, -1);
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
