/**
 * Kafka semantics of the served APIs, checked with exact requests over real TCP against
 * an in-process node: long-polling fetch, byte limits, offsets out of range, acks=0,
 * LogAppendTime, topic admin error codes, auto-creation rules, retention.
 */
import assert from "node:assert/strict";
import type { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { ManualClock } from "../../lib/util/clock.ts";
import { decodeRecords } from "../_helpers/fetch_all.ts";
import { startTestNode } from "../_helpers/in_process_node.ts";
import { buildBatch, buildSizedBatch } from "../unit/log/_batches.ts";

function produce(
  conn: KafkaConnection,
  topic: string,
  records: Uint8Array,
  acks = -1,
  partition = 0,
) {
  return conn.request(ApiKey.Produce, 9, {
    acks,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  }).then((r) => r.responses[0]!.partitionResponses[0]!);
}

function fetch(
  conn: KafkaConnection,
  topic: string,
  offset: number,
  opts: {
    maxWaitMs?: number;
    minBytes?: number;
    maxBytes?: number;
    partitionMaxBytes?: number;
    partitions?: number[];
  } = {},
) {
  return conn.request(ApiKey.Fetch, 11, {
    replicaId: -1,
    maxWaitMs: opts.maxWaitMs ?? 0,
    minBytes: opts.minBytes ?? 1,
    maxBytes: opts.maxBytes ?? 1 << 20,
    topics: [{
      topic,
      partitions: (opts.partitions ?? [0]).map((partition) => ({
        partition,
        fetchOffset: BigInt(offset),
        partitionMaxBytes: opts.partitionMaxBytes ?? 1 << 20,
      })),
    }],
  });
}

async function createTopic(
  conn: KafkaConnection,
  name: string,
  partitions: number,
  configs: Record<string, string> = {},
) {
  const res = await conn.request(ApiKey.CreateTopics, 7, {
    topics: [{
      name,
      numPartitions: partitions,
      replicationFactor: -1,
      configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
    }],
    timeoutMs: 5000,
  });
  return res.topics[0]!;
}

Deno.test("Fetch: long poll, byte limits and offset errors", async (t) => {
  await using node = await startTestNode();
  const conn = await node.connect();
  const consumer = await node.connect();
  assert.equal((await createTopic(conn, "lp", 2)).errorCode, ErrorCode.NONE);

  await t.step("an empty partition waits maxWaitMs and answers empty", async () => {
    const started = performance.now();
    const res = await fetch(consumer, "lp", 0, { maxWaitMs: 150 });
    assert.ok(performance.now() - started >= 140, "waited");
    const p = res.responses[0]!.partitions[0]!;
    assert.equal(p.errorCode, ErrorCode.NONE);
    assert.equal(p.records?.length ?? 0, 0);
  });

  await t.step("a waiting fetch is woken by a produce, long before maxWaitMs", async () => {
    const started = performance.now();
    const waiting = fetch(consumer, "lp", 0, { maxWaitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(
      (await produce(conn, "lp", buildBatch({ records: [{ value: "wake" }] }))).errorCode,
      ErrorCode.NONE,
    );
    const res = await waiting;
    assert.ok(performance.now() - started < 10_000, "woken, not timed out");
    const records = decodeRecords(res.responses[0]!.partitions[0]!.records!, 0);
    assert.deepEqual(records.map((r) => r.value), ["wake"]);
  });

  await t.step("minBytes holds the answer until enough bytes arrived (or timeout)", async () => {
    const waiting = fetch(consumer, "lp", 1, { maxWaitMs: 20_000, minBytes: 3000 });
    await produce(conn, "lp", buildSizedBatch(1, 1000));
    await produce(conn, "lp", buildSizedBatch(1, 1000));
    let settled = false;
    waiting.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false, "2 KB is not enough");
    await produce(conn, "lp", buildSizedBatch(1, 1000));
    const res = await waiting;
    assert.equal(decodeRecords(res.responses[0]!.partitions[0]!.records!, 0).length, 3);
  });

  await t.step(
    "partitionMaxBytes and maxBytes cut at whole batches, first batch always whole",
    async () => {
      for (let i = 0; i < 5; i++) await produce(conn, "lp", buildSizedBatch(1, 500), -1, 1);
      const small = await fetch(consumer, "lp", 0, { partitions: [1], partitionMaxBytes: 10 });
      assert.equal(
        decodeRecords(small.responses[0]!.partitions[0]!.records!, 1).length,
        1,
        "KIP-74: one batch over the limit",
      );
      const two = await fetch(consumer, "lp", 0, { partitions: [1], partitionMaxBytes: 1300 });
      assert.equal(decodeRecords(two.responses[0]!.partitions[0]!.records!, 1).length, 2);
      const capped = await fetch(consumer, "lp", 0, { partitions: [0, 1], maxBytes: 1300 });
      const total = capped.responses[0]!.partitions.reduce(
        (n, p) => n + (p.records?.length ?? 0),
        0,
      );
      assert.ok(total <= 1300 + 1200, `response limited (${total} bytes)`);
    },
  );

  await t.step("offsets past the log end or before the start are OFFSET_OUT_OF_RANGE", async () => {
    const res = await fetch(consumer, "lp", 1000);
    const p = res.responses[0]!.partitions[0]!;
    assert.equal(p.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
    // As Kafka: a consumer's error answer carries no offsets.
    assert.equal(p.highWatermark, -1n);
    assert.equal(
      (await fetch(consumer, "lp", -1)).responses[0]!.partitions[0]!.errorCode,
      ErrorCode.OFFSET_OUT_OF_RANGE,
    );
    const end = await fetch(consumer, "lp", 4);
    assert.equal(
      end.responses[0]!.partitions[0]!.errorCode,
      ErrorCode.NONE,
      "the log end itself is fine",
    );
  });

  await t.step(
    "an unknown partition or topic is UNKNOWN_TOPIC_OR_PARTITION; a stale epoch FENCED_LEADER_EPOCH",
    async () => {
      assert.equal(
        (await fetch(consumer, "lp", 0, { partitions: [7] })).responses[0]!.partitions[0]!
          .errorCode,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      );
      assert.equal(
        (await fetch(consumer, "nope", 0)).responses[0]!.partitions[0]!.errorCode,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      );
      const res = await consumer.request(ApiKey.Fetch, 11, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1000,
        topics: [{
          topic: "lp",
          partitions: [{
            partition: 0,
            fetchOffset: 0n,
            partitionMaxBytes: 1000,
            currentLeaderEpoch: 5,
          }],
        }],
      });
      assert.equal(res.responses[0]!.partitions[0]!.errorCode, ErrorCode.UNKNOWN_LEADER_EPOCH);
    },
  );

  await t.step("a fetch session id we never issued gets FETCH_SESSION_ID_NOT_FOUND", async () => {
    const res = await consumer.request(ApiKey.Fetch, 11, {
      replicaId: -1,
      sessionId: 99,
      sessionEpoch: 1,
      topics: [],
    });
    assert.equal(res.errorCode, ErrorCode.FETCH_SESSION_ID_NOT_FOUND);
  });
});

Deno.test("Produce: acks=0 gets no reply, LogAppendTime, NOT_ENOUGH_REPLICAS, INVALID_REQUIRED_ACKS", async (t) => {
  await using node = await startTestNode();
  const conn = await node.connect();

  await t.step("acks=0 is written without a response; the next request is answered", async () => {
    await conn.send(ApiKey.Produce, 9, {
      acks: 0,
      timeoutMs: 1000,
      topicData: [{
        name: "a0",
        partitionData: [{ index: 0, records: buildBatch({ records: [{ value: "q" }] }) }],
      }],
    });
    const md = await conn.request(ApiKey.Metadata, 9, { topics: [{ name: "a0" }] });
    assert.equal(md.topics[0]!.errorCode, ErrorCode.NONE);
    const res = await fetch(conn, "a0", 0, { maxWaitMs: 5000 });
    assert.deepEqual(
      decodeRecords(res.responses[0]!.partitions[0]!.records!, 0).map((r) => r.value),
      ["q"],
    );
  });

  await t.step("LogAppendTime topics stamp the broker's time", async () => {
    await createTopic(conn, "lat", 1, { "message.timestamp.type": "LogAppendTime" });
    const before = Date.now();
    const p = await produce(
      conn,
      "lat",
      buildBatch({ records: [{ value: "t", timestampMs: 1000 }] }),
    );
    assert.ok(Number(p.logAppendTimeMs) >= before);
    const rec = decodeRecords(
      (await fetch(conn, "lat", 0)).responses[0]!.partitions[0]!.records!,
      0,
    )[0]!;
    assert.equal(rec.timestamp, Number(p.logAppendTimeMs));
  });

  await t.step(
    "acks=all with min.insync.replicas above the ISR size is NOT_ENOUGH_REPLICAS",
    async () => {
      await createTopic(conn, "isr2", 1, { "min.insync.replicas": "2" });
      const batch = () => buildBatch({ records: [{ value: "x" }] });
      assert.equal(
        (await produce(conn, "isr2", batch(), -1)).errorCode,
        ErrorCode.NOT_ENOUGH_REPLICAS,
      );
      assert.equal(
        (await produce(conn, "isr2", batch(), 1)).errorCode,
        ErrorCode.NONE,
        "acks=1 is allowed",
      );
    },
  );

  await t.step("acks=2 is INVALID_REQUIRED_ACKS", async () => {
    assert.equal(
      (await produce(conn, "isr2", buildBatch({ records: [{ value: "x" }] }), 2)).errorCode,
      ErrorCode.INVALID_REQUIRED_ACKS,
    );
  });

  await t.step(
    "pipelined produces on one connection are answered in order with increasing offsets",
    async () => {
      const replies = await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) => produce(conn, "pipe", buildBatch({ records: [{ value: `${i}` }] })),
        ),
      );
      assert.deepEqual(
        replies.map((r) => Number(r.baseOffset)),
        Array.from({ length: 50 }, (_, i) => i),
      );
    },
  );
});

Deno.test("Admin: CreateTopics/DeleteTopics/CreatePartitions error codes and Metadata auto-creation", async (t) => {
  await using node = await startTestNode({ autoCreateTopics: false });
  const conn = await node.connect();

  await t.step("CreateTopics validates like Kafka", async () => {
    const cases: [string, number, Record<string, string>, number][] = [
      ["ok-topic", 3, {}, ErrorCode.NONE],
      ["ok-topic", 3, {}, ErrorCode.TOPIC_ALREADY_EXISTS],
      ["ok.topic", 1, {}, ErrorCode.NONE],
      ["ok_topic", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION], // '.' and '_' collide
      ["bad/name", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION],
      ["..", 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION],
      ["zero", 0, {}, ErrorCode.INVALID_PARTITIONS],
      ["conf", 1, { "retention.ms": "soon" }, ErrorCode.INVALID_CONFIG],
      ["conf2", 1, { "no.such.config": "1" }, ErrorCode.INVALID_CONFIG],
      ["conf3", 1, { "cleanup.policy": "compact,nothing" }, ErrorCode.INVALID_CONFIG],
    ];
    for (const [name, partitions, configs, code] of cases) {
      assert.equal((await createTopic(conn, name, partitions, configs)).errorCode, code, `${name}`);
    }
    const rf = await conn.request(ApiKey.CreateTopics, 7, {
      topics: [{ name: "rf3", numPartitions: 1, replicationFactor: 3 }],
      timeoutMs: 1000,
    });
    assert.equal(rf.topics[0]!.errorCode, ErrorCode.INVALID_REPLICATION_FACTOR);
    const dup = await conn.request(ApiKey.CreateTopics, 7, {
      topics: [{ name: "d", numPartitions: 1, replicationFactor: 1 }, {
        name: "d",
        numPartitions: 1,
        replicationFactor: 1,
      }],
      timeoutMs: 1000,
    });
    assert.deepEqual(dup.topics.map((t) => t.errorCode), [
      ErrorCode.INVALID_REQUEST,
      ErrorCode.INVALID_REQUEST,
    ]);
    const validateOnly = await conn.request(ApiKey.CreateTopics, 7, {
      topics: [{ name: "vo", numPartitions: 2, replicationFactor: 1 }],
      validateOnly: true,
      timeoutMs: 1000,
    });
    assert.equal(validateOnly.topics[0]!.errorCode, ErrorCode.NONE);
    assert.equal(validateOnly.topics[0]!.numPartitions, 2);
    const md = await conn.request(ApiKey.Metadata, 12, { topics: null });
    assert.deepEqual(md.topics.map((t) => t.name).sort(), ["ok-topic", "ok.topic"]);
  });

  await t.step(
    "Metadata does not auto-create when disabled; illegal names are INVALID_TOPIC_EXCEPTION",
    async () => {
      const md = await conn.request(ApiKey.Metadata, 12, {
        topics: [{ name: "missing" }, { name: "bad name" }],
        allowAutoTopicCreation: true,
      });
      assert.equal(md.topics[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      assert.equal(md.topics[1]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
    },
  );

  await t.step("CreatePartitions grows, and refuses to shrink", async () => {
    const grow = await conn.request(ApiKey.CreatePartitions, 3, {
      topics: [{ name: "ok-topic", count: 5, assignments: null }],
      timeoutMs: 1000,
    });
    assert.equal(grow.results[0]!.errorCode, ErrorCode.NONE);
    const shrink = await conn.request(ApiKey.CreatePartitions, 3, {
      topics: [{ name: "ok-topic", count: 2, assignments: null }],
      timeoutMs: 1000,
    });
    assert.equal(shrink.results[0]!.errorCode, ErrorCode.INVALID_PARTITIONS);
    const md = await conn.request(ApiKey.Metadata, 12, { topics: [{ name: "ok-topic" }] });
    assert.equal(md.topics[0]!.partitions.length, 5);
    assert.equal(
      (await produce(conn, "ok-topic", buildBatch({ records: [{ value: "p4" }] }), -1, 4))
        .errorCode,
      ErrorCode.NONE,
    );
  });

  await t.step("DeleteTopics by name and by id; unknown ones get the right codes", async () => {
    const md = await conn.request(ApiKey.Metadata, 12, { topics: [{ name: "ok.topic" }] });
    const id = md.topics[0]!.topicId;
    const byId = await conn.request(ApiKey.DeleteTopics, 6, {
      topics: [{ name: null, topicId: id }],
      timeoutMs: 1000,
    });
    assert.equal(byId.responses[0]!.errorCode, ErrorCode.NONE);
    const byName = await conn.request(ApiKey.DeleteTopics, 5, {
      topicNames: ["ok-topic", "ghost"],
      timeoutMs: 1000,
    });
    assert.deepEqual(byName.responses.map((r) => r.errorCode), [
      ErrorCode.NONE,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ]);
    const again = await conn.request(ApiKey.DeleteTopics, 6, {
      topics: [{ name: null, topicId: id }],
      timeoutMs: 1000,
    });
    assert.equal(again.responses[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
    const entries = [];
    for await (const e of Deno.readDir(`${node.dataDir}/topics`)) entries.push(e.name);
    assert.deepEqual(entries, []);
  });

  await t.step("a deleted topic can be created again, empty, after a restart too", async () => {
    assert.equal((await createTopic(conn, "ok-topic", 1)).errorCode, ErrorCode.NONE);
    const res = await fetch(conn, "ok-topic", 0);
    assert.equal(res.responses[0]!.partitions[0]!.highWatermark, 0n);
    await node.restart();
    const c2 = await node.connect();
    const md = await c2.request(ApiKey.Metadata, 12, { topics: null });
    assert.deepEqual(md.topics.map((t) => t.name), ["ok-topic"]);
  });
});

Deno.test("DescribeConfigs and DescribeCluster describe this node", async () => {
  await using node = await startTestNode();
  const conn = await node.connect();
  await createTopic(conn, "dc", 1, { "retention.ms": "1234" });
  const res = await conn.request(ApiKey.DescribeConfigs, 4, {
    resources: [
      { resourceType: 2, resourceName: "dc", configurationKeys: ["retention.ms", "segment.bytes"] },
      { resourceType: 4, resourceName: "1", configurationKeys: null },
      { resourceType: 2, resourceName: "nope", configurationKeys: null },
    ],
    includeSynonyms: true,
    includeDocumentation: true,
  });
  const [topic, broker, missing] = res.results;
  assert.deepEqual(topic!.configs.map((c) => [c.name, c.value, c.configSource]), [
    ["retention.ms", "1234", 1],
    ["segment.bytes", "1073741824", 5],
  ]);
  assert.ok(broker!.configs.some((c) => c.name === "num.partitions"));
  assert.equal(missing!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  const cluster = await conn.request(ApiKey.DescribeCluster, 1, {});
  assert.equal(cluster.errorCode, ErrorCode.NONE);
  assert.equal(cluster.controllerId, 1);
  assert.deepEqual(cluster.brokers.map((b) => [b.brokerId, b.port]), [[1, node.port]]);
});

Deno.test("Retention deletes old segments by size and time; ListOffsets follows the log start", async () => {
  const clock = new ManualClock(Date.now());
  await using node = await startTestNode({}, { clock });
  const conn = await node.connect();
  await createTopic(conn, "ret", 1, { "segment.bytes": "2000", "retention.bytes": "5000" });
  for (let i = 0; i < 20; i++) {
    await produce(conn, "ret", buildSizedBatch(1, 900, { timestampMs: clock.nowMs() + i }));
  }
  await node.node.runRetention();
  const offsets = async (timestamp: bigint) =>
    (await conn.request(ApiKey.ListOffsets, 7, {
      replicaId: -1,
      topics: [{ name: "ret", partitions: [{ partitionIndex: 0, timestamp }] }],
    })).topics[0]!.partitions[0]!;
  const earliest = Number((await offsets(-2n)).offset);
  assert.ok(earliest > 0, `old segments deleted (log start ${earliest})`);
  assert.equal((await offsets(-1n)).offset, 20n);
  assert.equal(
    (await fetch(conn, "ret", 0)).responses[0]!.partitions[0]!.errorCode,
    ErrorCode.OFFSET_OUT_OF_RANGE,
  );
  assert.equal((await offsets(-3n)).offset, 19n, "max timestamp: the last record");

  await createTopic(conn, "ret-time", 1, { "segment.bytes": "2000", "retention.ms": "60000" });
  for (let i = 0; i < 10; i++) {
    await produce(conn, "ret-time", buildSizedBatch(1, 900, { timestampMs: clock.nowMs() }));
  }
  clock.advance(120_000);
  await produce(conn, "ret-time", buildSizedBatch(1, 900, { timestampMs: clock.nowMs() }));
  await node.node.runRetention();
  const start = (await conn.request(ApiKey.ListOffsets, 7, {
    replicaId: -1,
    topics: [{ name: "ret-time", partitions: [{ partitionIndex: 0, timestamp: -2n }] }],
  })).topics[0]!.partitions[0]!.offset;
  assert.ok(start >= 9n, `segments older than retention.ms are gone (log start ${start})`);
});
