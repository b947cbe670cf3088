/** Deterministic test records and the checks shared by the client interop tests. */
import assert from "node:assert/strict";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";

/** Record i: key "k<i>", a printable value of varying length (no separators). */
export function testRecord(i: number, tag: string): { key: string; value: string } {
  const len = 10 + ((i * 7919) % 200);
  let value = `${tag}-${i}-`;
  while (value.length < len) value += String.fromCharCode(97 + ((i + value.length) % 26));
  return { key: `k${i}`, value };
}

/** Creates a topic through the protocol and checks it succeeded. */
export async function createTopic(
  port: number,
  name: string,
  numPartitions: number,
  configs: { name: string; value: string }[] = [],
): Promise<void> {
  const conn = await KafkaConnection.connect("127.0.0.1", port);
  try {
    const res = await conn.request(ApiKey.CreateTopics, 4, {
      topics: [{ name, numPartitions, replicationFactor: 1, configs }],
      timeoutMs: 10_000,
    });
    assert.equal(res.topics[0]?.errorCode, ErrorCode.NONE, res.topics[0]?.errorMessage ?? "");
  } finally {
    await conn.close();
  }
}

/** One consumed record as the interop tests compare them. */
export interface Consumed {
  partition: number;
  offset: number;
  key: string;
  value: string;
  headers: string;
}

/**
 * Checks that `consumed` holds exactly the `expected` records (by key and value), each
 * once, with contiguous offsets per partition starting at `firstOffset`, and that the
 * produce order of keys is kept within each partition.
 */
export function assertExactlyOnceInOrder(
  consumed: Consumed[],
  expected: { key: string; value: string }[],
  firstOffset = 0,
): void {
  assert.equal(consumed.length, expected.length, "record count");
  const byKey = new Map(expected.map((r, i) => [r.key, { ...r, index: i }]));
  const seen = new Set<string>();
  const perPartition = new Map<number, Consumed[]>();
  for (const c of consumed) {
    const want = byKey.get(c.key);
    assert.ok(want, `unexpected key ${c.key}`);
    assert.equal(c.value, want.value, `value of ${c.key}`);
    assert.ok(!seen.has(c.key), `duplicate ${c.key}`);
    seen.add(c.key);
    const list = perPartition.get(c.partition) ?? [];
    list.push(c);
    perPartition.set(c.partition, list);
  }
  for (const [partition, list] of perPartition) {
    list.sort((a, b) => a.offset - b.offset);
    list.forEach((c, i) =>
      assert.equal(c.offset, firstOffset + i, `offsets of partition ${partition} are contiguous`)
    );
    for (let i = 1; i < list.length; i++) {
      assert.ok(
        byKey.get(list[i - 1]!.key)!.index < byKey.get(list[i]!.key)!.index,
        `produce order kept in partition ${partition}`,
      );
    }
  }
}
