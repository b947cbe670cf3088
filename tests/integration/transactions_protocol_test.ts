/**
 * Transactions on the wire, request by request (issue 13): the last stable offset in Fetch
 * and ListOffsets, abortedTransactions for read_committed fetches, the coordinator's answers
 * (AddPartitionsToTxn, EndTxn retries, DescribeTransactions, ListTransactions,
 * DescribeProducers), transaction verification (a batch for a partition not added to the
 * transaction, or arriving after its abort, is refused and opens no transaction that would
 * hold the LSO back), requireStable OffsetFetch while transactional offsets are pending, and
 * a restart in the middle of a commit.
 */
import assert from "node:assert/strict";
import type { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, encodeRecordBatch, ErrorCode } from "../../lib/protocol/mod.ts";
import { startTestNode } from "../_helpers/in_process_node.ts";

const TOPIC = "txp";
const TXN_ID = "proto-txn";
const enc = new TextEncoder();

function txnBatch(producerId: bigint, epoch: number, seq: number, values: string[]) {
  return encodeRecordBatch(
    values.map((v) => ({ key: null, value: enc.encode(v), timestampMs: Date.now() })),
    { producerId, producerEpoch: epoch, baseSequence: seq, transactional: true },
  );
}

function produce(conn: KafkaConnection, partition: number, records: Uint8Array) {
  return conn.request(ApiKey.Produce, 9, {
    transactionalId: TXN_ID,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: TOPIC, partitionData: [{ index: partition, records }] }],
  }).then((r) => r.responses[0]!.partitionResponses[0]!);
}

async function fetch(conn: KafkaConnection, partition: number, isolationLevel: number) {
  const r = await conn.request(ApiKey.Fetch, 12, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic: TOPIC,
      partitions: [{
        partition,
        currentLeaderEpoch: -1,
        fetchOffset: 0n,
        lastFetchedEpoch: -1,
        logStartOffset: -1n,
        partitionMaxBytes: 1 << 20,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
  return r.responses[0]!.partitions[0]!;
}

async function latest(conn: KafkaConnection, partition: number, isolationLevel: number) {
  const r = await conn.request(ApiKey.ListOffsets, 7, {
    replicaId: -1,
    isolationLevel,
    topics: [{ name: TOPIC, partitions: [{ partitionIndex: partition, timestamp: -1n }] }],
  });
  return r.topics[0]!.partitions[0]!.offset;
}

function addPartitions(conn: KafkaConnection, pid: bigint, epoch: number, partitions: number[]) {
  return conn.request(ApiKey.AddPartitionsToTxn, 3, {
    v3AndBelowTransactionalId: TXN_ID,
    v3AndBelowProducerId: pid,
    v3AndBelowProducerEpoch: epoch,
    v3AndBelowTopics: [{ name: TOPIC, partitions }],
  }).then((r) =>
    r.resultsByTopicV3AndBelow[0]!.resultsByPartition.map((p) => p.partitionErrorCode)
  );
}

async function endTxn(conn: KafkaConnection, pid: bigint, epoch: number, committed: boolean) {
  return (await conn.request(ApiKey.EndTxn, 3, {
    transactionalId: TXN_ID,
    producerId: pid,
    producerEpoch: epoch,
    committed,
  })).errorCode;
}

/** Retries `call` while it answers CONCURRENT_TRANSACTIONS (markers still being written). */
async function settled<T>(call: () => Promise<T>, code: (t: T) => number): Promise<T> {
  for (let i = 0;; i++) {
    const r = await call();
    if (code(r) !== ErrorCode.CONCURRENT_TRANSACTIONS || i > 100) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
}

Deno.test("transactions on the wire: LSO, aborted transactions, verification, coordinator APIs", async (t) => {
  await using node = await startTestNode({ numPartitions: 2 });
  const conn = await node.connect();
  await conn.request(ApiKey.CreateTopics, 4, {
    topics: [{ name: TOPIC, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
    validateOnly: false,
  });
  const found = await conn.request(ApiKey.FindCoordinator, 4, {
    keyType: 1,
    coordinatorKeys: [TXN_ID],
  });
  assert.equal(found.coordinators[0]!.errorCode, ErrorCode.NONE);
  const init = await conn.request(ApiKey.InitProducerId, 4, {
    transactionalId: TXN_ID,
    transactionTimeoutMs: 60_000,
    producerId: -1n,
    producerEpoch: -1,
  });
  assert.equal(init.errorCode, ErrorCode.NONE);
  const pid = init.producerId;
  const epoch = init.producerEpoch;

  await t.step("a batch for a partition not added to the transaction is refused", async () => {
    const r = await produce(conn, 0, txnBatch(pid, epoch, 0, ["early"]));
    assert.equal(r.errorCode, ErrorCode.INVALID_TXN_STATE);
    assert.equal(await latest(conn, 0, 0), 0n, "nothing written");
  });

  await t.step("an open transaction holds the LSO; read_committed sees nothing of it", async () => {
    assert.deepEqual(await addPartitions(conn, pid, epoch, [0, 1]), [0, 0]);
    assert.equal((await produce(conn, 0, txnBatch(pid, epoch, 0, ["a0", "a1"]))).errorCode, 0);
    assert.equal((await produce(conn, 1, txnBatch(pid, epoch, 0, ["b0"]))).errorCode, 0);
    assert.equal(await latest(conn, 0, 0), 2n, "read_uncommitted: the high watermark");
    assert.equal(await latest(conn, 0, 1), 0n, "read_committed: the LSO");
    const committed = await fetch(conn, 0, 1);
    assert.equal(committed.lastStableOffset, 0n);
    assert.equal(committed.highWatermark, 2n);
    assert.equal((committed.records as Uint8Array).length, 0);
    const uncommitted = await fetch(conn, 0, 0);
    assert.ok((uncommitted.records as Uint8Array).length > 0);
    assert.equal(uncommitted.abortedTransactions, null);
    const described = await conn.request(ApiKey.DescribeTransactions, 0, {
      transactionalIds: [TXN_ID, "no-such-id"],
    });
    assert.equal(described.transactionStates[0]!.transactionState, "Ongoing");
    assert.deepEqual(
      described.transactionStates[0]!.topics.map((x) => [x.topic, x.partitions]),
      [[TOPIC, [0, 1]]],
    );
    assert.equal(
      described.transactionStates[1]!.errorCode,
      ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
    );
    const listed = await conn.request(ApiKey.ListTransactions, 1, {
      stateFilters: ["Ongoing", "Bogus"],
      producerIdFilters: [],
      durationFilter: -1n,
    });
    assert.deepEqual(listed.unknownStateFilters, ["Bogus"]);
    assert.deepEqual(listed.transactionStates.map((s) => s.transactionalId), [TXN_ID]);
    const producers = await conn.request(ApiKey.DescribeProducers, 0, {
      topics: [{ name: TOPIC, partitionIndexes: [0] }],
    });
    const active = producers.topics[0]!.partitions[0]!.activeProducers[0]!;
    assert.equal(active.producerId, pid);
    assert.equal(active.currentTxnStartOffset, 0n);
  });

  await t.step(
    "abort: read_committed gets the aborted transaction to skip; the LSO moves on",
    async () => {
      assert.equal(await endTxn(conn, pid, epoch, false), ErrorCode.NONE);
      // A retried abort while the markers go out, or after, is answered, not refused.
      const retry = await settled(() => endTxn(conn, pid, epoch, false), (c) => c);
      assert.equal(retry, ErrorCode.NONE);
      assert.equal(await endTxn(conn, pid, epoch, true), ErrorCode.INVALID_TXN_STATE);
      assert.equal(await latest(conn, 0, 1), 3n, "past the abort marker");
      const r = await fetch(conn, 0, 1);
      assert.deepEqual(r.abortedTransactions?.map((a) => [a.producerId, a.firstOffset]), [[
        pid,
        0n,
      ]]);
    },
  );

  await t.step(
    "a batch of the aborted transaction arriving late opens no transaction",
    async () => {
      const late = await produce(conn, 1, txnBatch(pid, epoch, 1, ["late"]));
      assert.equal(late.errorCode, ErrorCode.INVALID_TXN_STATE);
      assert.equal(await latest(conn, 1, 1), await latest(conn, 1, 0), "LSO = HW on partition 1");
    },
  );

  await t.step("transactional offsets are unstable until the commit marker", async () => {
    const groupCoordinator = await conn.request(ApiKey.FindCoordinator, 4, {
      keyType: 0,
      coordinatorKeys: ["proto-group"],
    });
    assert.equal(groupCoordinator.coordinators[0]!.errorCode, ErrorCode.NONE);
    const add = await settled(
      () =>
        conn.request(ApiKey.AddOffsetsToTxn, 3, {
          transactionalId: TXN_ID,
          producerId: pid,
          producerEpoch: epoch,
          groupId: "proto-group",
        }),
      (r) => r.errorCode,
    );
    assert.equal(add.errorCode, ErrorCode.NONE);
    const commit = await conn.request(ApiKey.TxnOffsetCommit, 3, {
      transactionalId: TXN_ID,
      groupId: "proto-group",
      producerId: pid,
      producerEpoch: epoch,
      generationId: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [{
        name: TOPIC,
        partitions: [{
          partitionIndex: 0,
          committedOffset: 3n,
          committedLeaderEpoch: -1,
          committedMetadata: "",
        }],
      }],
    });
    assert.equal(commit.topics[0]!.partitions[0]!.errorCode, ErrorCode.NONE);
    const fetchOffsets = (requireStable: boolean) =>
      conn.request(ApiKey.OffsetFetch, 7, {
        groupId: "proto-group",
        topics: [{ name: TOPIC, partitionIndexes: [0] }],
        requireStable,
      }).then((r) => r.topics[0]!.partitions[0]!);
    assert.equal((await fetchOffsets(true)).errorCode, ErrorCode.UNSTABLE_OFFSET_COMMIT);
    assert.equal((await fetchOffsets(false)).committedOffset, -1n);
    assert.equal(await endTxn(conn, pid, epoch, true), ErrorCode.NONE);
    for (let i = 0; i < 100; i++) {
      const o = await fetchOffsets(true);
      if (o.errorCode === ErrorCode.NONE) {
        assert.equal(o.committedOffset, 3n);
        return;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.fail("the transactional offset never became stable");
  });

  await t.step("a stale epoch is fenced; the next incarnation gets the next epoch", async () => {
    const next = await settled(
      () =>
        conn.request(ApiKey.InitProducerId, 4, {
          transactionalId: TXN_ID,
          transactionTimeoutMs: 60_000,
          producerId: -1n,
          producerEpoch: -1,
        }),
      (r) => r.errorCode,
    );
    assert.deepEqual([next.errorCode, next.producerId, next.producerEpoch], [0, pid, epoch + 1]);
    assert.deepEqual(await addPartitions(conn, pid, epoch, [0]), [ErrorCode.PRODUCER_FENCED]);
  });

  await t.step("offsets of a group the transaction did not add are refused", async () => {
    await conn.request(ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: ["unadded"] });
    const r = await conn.request(ApiKey.TxnOffsetCommit, 3, {
      transactionalId: TXN_ID,
      groupId: "unadded",
      producerId: pid,
      producerEpoch: epoch + 1,
      generationId: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [{
        name: TOPIC,
        partitions: [{
          partitionIndex: 0,
          committedOffset: 1n,
          committedLeaderEpoch: -1,
          committedMetadata: "",
        }],
      }],
    });
    assert.equal(r.topics[0]!.partitions[0]!.errorCode, ErrorCode.INVALID_TXN_STATE);
  });

  await t.step("clients cannot write the internal topics", async () => {
    const r = await conn.request(ApiKey.Produce, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{
        name: "__transaction_state",
        partitionData: [{
          index: 0,
          records: encodeRecordBatch([{ key: null, value: null, timestampMs: 0 }]),
        }],
      }],
    });
    assert.equal(
      r.responses[0]!.partitionResponses[0]!.errorCode,
      ErrorCode.INVALID_TOPIC_EXCEPTION,
    );
  });
});
