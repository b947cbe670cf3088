/**
 * Reading a partition's stored batches in order, for coordinators that rebuild their state
 * from an internal topic (`__consumer_offsets`, `__transaction_state`).
 */
import { BATCH_HEADER_SIZE, type BatchHeader, readBatchHeader } from "../protocol/record_batch.ts";
import type { PartitionLog } from "./partition_log.ts";

const READ_CHUNK = 4 << 20;

/**
 * Calls `fn` with every whole batch of `log` from its start up to `end` (exclusive), in
 * order, with its header. The log is read in chunks of a few MiB; a batch is a view into
 * a chunk, valid during the call only. Compaction may leave gaps between batches and empty
 * batches: the read continues after each batch's last offset.
 */
export function forEachStoredBatch(
  log: PartitionLog,
  end: number,
  fn: (header: BatchHeader, batch: Uint8Array) => void,
): void {
  let offset = log.logStartOffset;
  while (offset < end) {
    const { records: bytes } = log.read(offset, READ_CHUNK, {
      maxOffset: end,
      minOneMessage: true,
    });
    let pos = 0;
    let next = offset;
    while (pos + BATCH_HEADER_SIZE <= bytes.length) {
      const h = readBatchHeader(bytes, pos);
      if (pos + h.sizeInBytes > bytes.length) break;
      fn(h, bytes.subarray(pos, pos + h.sizeInBytes));
      next = h.baseOffset + h.lastOffsetDelta + 1;
      pos += h.sizeInBytes;
    }
    if (next <= offset) break;
    offset = next;
  }
}
