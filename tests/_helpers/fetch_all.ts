/**
 * Reads every record of a topic with raw Fetch requests and decodes the (uncompressed)
 * batches, so tests can check exactly what the broker stored, independent of any
 * client's consumer logic.
 */
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, BATCH_HEADER_SIZE, ErrorCode, readBatchHeader } from "../../lib/protocol/mod.ts";
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

function varint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
  }
  return [result % 2 === 0 ? result / 2 : -(result + 1) / 2, pos];
}

/** Decodes the records of uncompressed batches laid end to end. */
export function decodeRecords(bytes: Uint8Array, partition: number): FetchedRecord[] {
  const out: FetchedRecord[] = [];
  let pos = 0;
  while (pos + BATCH_HEADER_SIZE <= bytes.length) {
    const h = readBatchHeader(bytes, pos);
    if (pos + h.sizeInBytes > bytes.length) break; // partial batch at the end of a fetch
    assert((h.attributes & 7) === 0, "decodeRecords handles uncompressed batches only");
    let p = pos + BATCH_HEADER_SIZE;
    for (let i = 0; i < h.recordCount; i++) {
      let len, tsDelta, offDelta, kLen, vLen, nHeaders;
      [len, p] = varint(bytes, p);
      const end = p + len;
      p += 1; // attributes
      [tsDelta, p] = varint(bytes, p);
      [offDelta, p] = varint(bytes, p);
      [kLen, p] = varint(bytes, p);
      const key = kLen < 0 ? "" : decoder.decode(bytes.subarray(p, p + kLen));
      p += Math.max(0, kLen);
      [vLen, p] = varint(bytes, p);
      const value = vLen < 0 ? "" : decoder.decode(bytes.subarray(p, p + vLen));
      p += Math.max(0, vLen);
      [nHeaders, p] = varint(bytes, p);
      const headers: string[] = [];
      for (let j = 0; j < nHeaders; j++) {
        let hk, hv;
        [hk, p] = varint(bytes, p);
        const name = decoder.decode(bytes.subarray(p, p + hk));
        p += hk;
        [hv, p] = varint(bytes, p);
        headers.push(`${name}=${hv < 0 ? "" : decoder.decode(bytes.subarray(p, p + hv))}`);
        p += Math.max(0, hv);
      }
      assert(p === end, "record length matches its fields");
      const timestamp = (h.attributes & 8) !== 0 ? h.maxTimestamp : h.baseTimestamp + tsDelta;
      out.push({
        partition,
        offset: h.baseOffset + offDelta,
        timestamp,
        key,
        value,
        headers: headers.join(","),
      });
    }
    pos += h.sizeInBytes;
  }
  return out;
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
