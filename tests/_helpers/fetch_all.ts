/**
 * Reads every record of a topic with raw Fetch requests and decodes the (uncompressed)
 * batches, so tests can check exactly what the broker stored, independent of any
 * client's consumer logic.
 */
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, decodeRecords as decodeBatchRecords, ErrorCode } from "../../lib/protocol/mod.ts";
import { assert } from "../../lib/util/assert.ts";

/** One decoded record. */
export interface FetchedRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: string;
  value: string;
  /** "k=v,k2=v2" */
  headers: string;
}

const decoder = new TextDecoder();
const text = (b: Uint8Array | null) => (b === null ? "" : decoder.decode(b));

/** Decodes the records of uncompressed batches laid end to end, as strings. */
export function decodeRecords(bytes: Uint8Array, partition: number): FetchedRecord[] {
  return decodeBatchRecords(bytes).map((r) => ({
    partition,
    offset: r.offset,
    timestamp: r.timestampMs,
    key: text(r.key),
    value: text(r.value),
    headers: r.headers.map((h) => `${h.key}=${text(h.value)}`).join(","),
  }));
}

/** Every record of `topic` (partitions 0..partitions-1), fetched up to the high watermark. */
export async function fetchAll(
  port: number,
  topic: string,
  partitions: number,
): Promise<FetchedRecord[]> {
  const conn = await KafkaConnection.connect("127.0.0.1", port);
  const out: FetchedRecord[] = [];
  try {
    for (let partition = 0; partition < partitions; partition++) {
      let offset = 0;
      for (;;) {
        const res = await conn.request(ApiKey.Fetch, 11, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 1 << 20,
          topics: [{
            topic,
            partitions: [{ partition, fetchOffset: BigInt(offset), partitionMaxBytes: 1 << 20 }],
          }],
        });
        const p = res.responses[0]!.partitions[0]!;
        assert(
          p.errorCode === ErrorCode.NONE,
          `fetch ${topic}-${partition} failed with ${p.errorCode}`,
        );
        const records = decodeRecords(p.records ?? new Uint8Array(0), partition).filter((r) =>
          r.offset >= offset
        );
        if (records.length === 0) break;
        out.push(...records);
        offset = records.at(-1)!.offset + 1;
      }
    }
  } finally {
    await conn.close();
  }
  return out;
}
