/** Raw Produce request bodies for tests that talk the protocol directly. */
import { encodeRecordBatch } from "../../lib/protocol/record_codec.ts";

const encoder = new TextEncoder();

/** A Produce body carrying one batch with one unkeyed record `value` for `topic`-`partition`. */
export function oneRecordProduce(
  topic: string,
  partition: number,
  value: string,
  options: { acks?: number; timeoutMs?: number } = {},
) {
  return {
    acks: options.acks ?? -1,
    timeoutMs: options.timeoutMs ?? 5000,
    topicData: [{
      name: topic,
      partitionData: [{
        index: partition,
        records: encodeRecordBatch([{
          key: null,
          value: encoder.encode(value),
          timestampMs: Date.now(),
        }]),
      }],
    }],
  };
}
