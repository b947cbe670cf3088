/**
 * Records in and out of RecordBatch v2 for `produce` and `consume`: Kafka's default
 * partitioner (murmur2 of the key, as the Java client, so a key lands where a Java
 * producer would put it), and decoding of fetched batches of any codec, transaction
 * markers left out.
 */
import { ByteReader, isControl, readBatchHeader } from "../protocol/mod.ts";
import { readBatchRecords } from "../protocol/record_codec.ts";

/** A fetched record, decoded. */
export interface ConsumedRecord {
  partition: number;
  offset: number;
  timestampMs: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: { key: string; value: Uint8Array | null }[];
}

/** Kafka's `Utils.murmur2` (seed 0x9747b28c), as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const r = 24;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4]! & 0xff) | ((data[i4 + 1]! & 0xff) << 8) |
      ((data[i4 + 2]! & 0xff) << 16) | ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  // Java's switch falls through from case 3 to case 1.
  if (rest >= 3) h ^= (data[tail + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[tail + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[tail]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner gives a keyed record. */
export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

const decoder = new TextDecoder();

function readHeaders(encoded: Uint8Array): { key: string; value: Uint8Array | null }[] {
  const r = new ByteReader(encoded);
  const count = r.varint();
  const out: { key: string; value: Uint8Array | null }[] = [];
  for (let i = 0; i < count; i++) {
    const keyLength = r.varint();
    const key = keyLength < 0 ? "" : decoder.decode(r.raw(keyLength));
    const valueLength = r.varint();
    out.push({ key, value: valueLength < 0 ? null : r.raw(valueLength) });
  }
  return out;
}

/**
 * The data records of the complete batches in a Fetch response's `records` (a trailing
 * partial batch is ignored, as clients do), from offset `from` on; control batches
 * (transaction markers) are skipped. Throws `ProtocolDecodeError` for malformed batches.
 */
export function decodeFetchedRecords(
  records: Uint8Array,
  partition: number,
  from: number,
): ConsumedRecord[] {
  const out: ConsumedRecord[] = [];
  let pos = 0;
  while (records.length - pos >= 61) {
    const h = readBatchHeader(records, pos);
    if (h.sizeInBytes <= 0 || pos + h.sizeInBytes > records.length) break;
    const batch = records.subarray(pos, pos + h.sizeInBytes);
    pos += h.sizeInBytes;
    if (isControl(h) || h.baseOffset + h.lastOffsetDelta < from) continue;
    for (const rec of readBatchRecords(batch).records) {
      if (rec.offset < from) continue;
      out.push({
        partition,
        offset: rec.offset,
        timestampMs: rec.timestampMs,
        key: rec.key,
        value: rec.value,
        headers: readHeaders(rec.headers),
      });
    }
  }
  return out;
}

/** The offset after the last batch in `records` (complete batches only), or null if none. */
export function nextOffsetAfter(records: Uint8Array): number | null {
  let pos = 0;
  let next: number | null = null;
  while (records.length - pos >= 61) {
    const h = readBatchHeader(records, pos);
    if (h.sizeInBytes <= 0 || pos + h.sizeInBytes > records.length) break;
    next = h.baseOffset + h.lastOffsetDelta + 1;
    pos += h.sizeInBytes;
  }
  return next;
}
