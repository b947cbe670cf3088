/**
 * Walks the records of an uncompressed RecordBatch v2 for their timestamps, without
 * decoding keys, values or headers (ListOffsets by timestamp and MAX_TIMESTAMP).
 */
import { BATCH_HEADER_SIZE, type BatchHeader } from "../protocol/record_batch.ts";

/** Zig-zag varint → [value, nextPos]; null if truncated or too long. */
function readVarint(buf: Uint8Array, pos: number, end: number): [number, number] | null {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10 && pos < end; i++) {
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      return [result % 2 === 0 ? result / 2 : -(result + 1) / 2, pos];
    }
    mul *= 128;
  }
  return null;
}

/**
 * Calls `visit(offset, timestampMs)` for each record of the uncompressed batch whose
 * bytes start at `start` in `buf`, stopping early when `visit` returns true.
 *
 * @returns the offset for which `visit` returned true, or -1
 */
export function findRecord(
  buf: Uint8Array,
  start: number,
  h: BatchHeader,
  visit: (offset: number, timestampMs: number) => boolean,
): number {
  const end = start + h.sizeInBytes;
  let pos = start + BATCH_HEADER_SIZE;
  for (let i = 0; i < h.recordCount && pos < end; i++) {
    const len = readVarint(buf, pos, end);
    if (len === null) return -1;
    const recordEnd = len[1] + len[0];
    // attributes int8, then timestampDelta varlong, offsetDelta varint
    const tsDelta = readVarint(buf, len[1] + 1, end);
    if (tsDelta === null) return -1;
    const offsetDelta = readVarint(buf, tsDelta[1], end);
    if (offsetDelta === null) return -1;
    const offset = h.baseOffset + offsetDelta[0];
    if (visit(offset, h.baseTimestamp + tsDelta[0])) return offset;
    pos = recordEnd;
  }
  return -1;
}
