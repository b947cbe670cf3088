import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import { decodeFetchedRecords, murmur2, partitionForKey } from "../../../lib/admin/_records.ts";
import { LineSplitter } from "../../../lib/admin/produce_command.ts";
import { Compression, encodeControlBatch, setBaseOffset } from "../../../lib/protocol/mod.ts";
import { buildCodecBatch } from "../log/_batches.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("murmur2() matches Kafka's Utils.murmur2 test vectors", () => {
  // From Kafka's UtilsTest.testMurmur2.
  const cases: [string, number][] = [
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ];
  for (const [key, hash] of cases) assert.equal(murmur2(encoder.encode(key)), hash, key);
});

Deno.test("partitionForKey() agrees with kafkajs's Java-compatible default partitioner", () => {
  const partitioner = Partitioners.DefaultPartitioner();
  for (const partitions of [1, 3, 7, 50]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
      partitionId: i,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    }));
    for (let i = 0; i < 200; i++) {
      const key = `key-${i}-${"x".repeat(i % 5)}`;
      const expected = partitioner({
        topic: "t",
        partitionMetadata,
        message: { key: Buffer.from(key), value: null },
      });
      assert.equal(partitionForKey(encoder.encode(key), partitions), expected, key);
    }
  }
});

Deno.test("decodeFetchedRecords() reads every codec, skips markers and earlier offsets", () => {
  for (
    const codec of [
      Compression.NONE,
      Compression.GZIP,
      Compression.SNAPPY,
      Compression.LZ4,
      Compression.ZSTD,
    ]
  ) {
    const first = buildCodecBatch(
      [0, 1, 2].map((i) => ({ key: encoder.encode(`k${i}`), value: encoder.encode(`v${i}`) })),
      codec,
    );
    const marker = encodeControlBatch(
      { commit: true, coordinatorEpoch: 0, producerId: 7n, producerEpoch: 0 },
      1_700_000_000_000,
    );
    setBaseOffset(marker, 3);
    const second = buildCodecBatch([{ key: encoder.encode("k4"), value: null }], codec);
    setBaseOffset(second, 4);
    // A fetch response may end with a partial batch: it is left for the next fetch.
    const bytes = new Uint8Array([...first, ...marker, ...second, ...first.subarray(0, 20)]);
    const records = decodeFetchedRecords(bytes, 2, 1);
    assert.deepEqual(
      records.map((
        r,
      ) => [r.partition, r.offset, decoder.decode(r.key!), r.value && decoder.decode(r.value)]),
      [[2, 1, "k1", "v1"], [2, 2, "k2", "v2"], [2, 4, "k4", null]],
      `codec ${codec}`,
    );
  }
});

Deno.test("LineSplitter splits LF and CRLF lines across chunks", () => {
  const s = new LineSplitter();
  const lines = [
    ...s.push(encoder.encode("a\r\nb")),
    ...s.push(encoder.encode("c\n\nd")),
    ...s.push(encoder.encode("\r")),
  ].map((l) => decoder.decode(l));
  assert.deepEqual(lines, ["a", "bc", ""]);
  assert.equal(decoder.decode(s.end()!), "d");
  assert.equal(s.end(), null);
});
