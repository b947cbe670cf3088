/** DescribeQuorum answered from a stubbed Raft status and metadata image. */
import assert from "node:assert/strict";
import type { RaftStatus } from "../../../lib/raft/mod.ts";
import {
  ApiKey,
  decodeResponseBody,
  type DescribeQuorumRequest,
  type DescribeQuorumResponse,
  encodeResponseBody,
  ErrorCode,
  ZERO_UUID,
} from "../../../lib/protocol/mod.ts";
import type { RequestContext } from "../../../lib/server/handler.ts";
import { describeQuorumHandler } from "../../../lib/server/handlers/describe_quorum.ts";
import type { BrokerServices } from "../../../lib/server/services.ts";
import { ManualClock } from "../../../lib/util/clock.ts";

const NOW = 1_700_000_000_000;

function status(overrides: Partial<RaftStatus>): RaftStatus {
  return {
    id: 1,
    role: "leader",
    term: 4,
    leader: 1,
    commit: 17,
    applied: 17,
    lastIndex: 18,
    snapshotIndex: 0,
    voters: [3, 1, 2],
    learners: [],
    match: { 1: 18, 2: 17, 3: 9 },
    ...overrides,
  };
}

function broker(id: number, port: number, fenced = false) {
  return {
    brokerId: id,
    incarnationId: ZERO_UUID,
    brokerEpoch: 5,
    registrationOffset: 1,
    endpoints: [{ host: "127.0.0.1", port }],
    rack: null,
    fenced,
    inControlledShutdown: false,
  };
}

/** A context whose services have only what the handler reads. */
function context(st: RaftStatus): RequestContext {
  const services = {
    clock: new ManualClock(NOW),
    metadata: {
      status: () => st,
      image: { brokers: new Map([[2, broker(2, 9093, true)], [1, broker(1, 9092)]]) },
    },
  } as unknown as BrokerServices;
  return { services } as unknown as RequestContext;
}

function request(topics: DescribeQuorumRequest["topics"]): DescribeQuorumRequest {
  return { topics };
}

const METADATA_REQUEST = request([{
  topicName: "__cluster_metadata",
  partitions: [{ partitionIndex: 0 }],
}]);

async function call(st: RaftStatus, req: DescribeQuorumRequest, version = 2) {
  const reply = await describeQuorumHandler.handle(context(st), req);
  assert.equal(reply.kind, "respond");
  const body = await (reply as { response: unknown }).response;
  // Through the codec, so the answer is valid on the wire for this version.
  const bytes = encodeResponseBody(ApiKey.DescribeQuorum, version, body as DescribeQuorumResponse);
  return decodeResponseBody(ApiKey.DescribeQuorum, version, bytes);
}

Deno.test("describeQuorumHandler on the leader reports every voter's match index", async () => {
  const res = await call(status({}), METADATA_REQUEST);
  assert.equal(res.errorCode, ErrorCode.NONE);
  assert.equal(res.topics.length, 1);
  assert.equal(res.topics[0]!.topicName, "__cluster_metadata");
  const p = res.topics[0]!.partitions[0]!;
  assert.equal(p.errorCode, ErrorCode.NONE);
  assert.equal(p.leaderId, 1);
  assert.equal(p.leaderEpoch, 4);
  assert.equal(p.highWatermark, 17n);
  assert.deepEqual(
    p.currentVoters.map((v) => [v.replicaId, v.logEndOffset, v.lastCaughtUpTimestamp]),
    [[1, 18n, BigInt(NOW)], [2, 17n, -1n], [3, 9n, -1n]],
  );
  assert.deepEqual(p.observers, []);
  assert.deepEqual(
    res.nodes.map((n) => [n.nodeId, n.listeners.map((l) => [l.name, l.host, l.port])]),
    [[1, [["PLAINTEXT", "127.0.0.1", 9092]]], [2, [["PLAINTEXT", "127.0.0.1", 9093]]]],
  );
});

Deno.test("describeQuorumHandler on a follower knows only its own log end", async () => {
  const res = await call(
    status({ id: 2, role: "follower", leader: 1, lastIndex: 16, commit: 15, match: {} }),
    METADATA_REQUEST,
  );
  const p = res.topics[0]!.partitions[0]!;
  assert.equal(p.leaderId, 1);
  assert.equal(p.highWatermark, 15n);
  assert.deepEqual(
    p.currentVoters.map((v) => [v.replicaId, v.logEndOffset, v.lastCaughtUpTimestamp]),
    [[1, -1n, -1n], [2, 16n, -1n], [3, -1n, -1n]],
  );
});

Deno.test("describeQuorumHandler without a known leader answers leaderId -1", async () => {
  const res = await call(
    status({ role: "candidate", leader: undefined, term: 7, match: {} }),
    METADATA_REQUEST,
    0,
  );
  const p = res.topics[0]!.partitions[0]!;
  assert.equal(p.leaderId, -1);
  assert.equal(p.leaderEpoch, 7);
  // v0 has neither timestamps nor nodes.
  assert.equal(p.currentVoters[0]!.lastCaughtUpTimestamp, -1n);
  assert.deepEqual(res.nodes, []);
});

Deno.test("describeQuorumHandler encodes at v1 with timestamps", async () => {
  const res = await call(status({}), METADATA_REQUEST, 1);
  const self = res.topics[0]!.partitions[0]!.currentVoters.find((v) => v.replicaId === 1)!;
  assert.equal(self.lastCaughtUpTimestamp, BigInt(NOW));
  assert.equal(self.lastFetchTimestamp, -1n);
});

Deno.test("describeQuorumHandler refuses other partitions with UNKNOWN_TOPIC_OR_PARTITION", async (t) => {
  const cases: [string, DescribeQuorumRequest][] = [
    ["another topic", request([{ topicName: "demo", partitions: [{ partitionIndex: 0 }] }])],
    [
      "another partition",
      request([{ topicName: "__cluster_metadata", partitions: [{ partitionIndex: 1 }] }]),
    ],
    [
      "two partitions",
      request([{
        topicName: "__cluster_metadata",
        partitions: [{ partitionIndex: 0 }, { partitionIndex: 1 }],
      }]),
    ],
  ];
  for (const [name, req] of cases) {
    await t.step(name, async () => {
      const res = await call(status({}), req);
      assert.equal(res.errorCode, ErrorCode.NONE);
      assert.deepEqual(
        res.topics.map((
          tp,
        ) => [tp.topicName, tp.partitions.map((p) => [p.partitionIndex, p.errorCode])]),
        req.topics.map((tp) => [
          tp.topicName,
          tp.partitions.map((p) => [p.partitionIndex, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]),
        ]),
      );
    });
  }
  await t.step("no topics", async () => {
    const res = await call(status({}), request([]));
    assert.deepEqual(res.topics, []);
  });
});
