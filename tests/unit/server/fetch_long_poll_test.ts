/**
 * A long-polling Fetch must answer when its partition closes (topic deleted) or stops
 * being led here, instead of waiting (or, worse, re-arming on a closed partition forever).
 */
import { systemTimers } from "../../../lib/runtime/mod.ts";
import assert from "node:assert/strict";
import type { MetadataImage } from "../../../lib/metadata/mod.ts";
import { ErrorCode, type FetchRequest, type FetchResponse } from "../../../lib/protocol/mod.ts";
import { ReplicaManager } from "../../../lib/replication/mod.ts";
import type { RequestContext } from "../../../lib/server/handler.ts";
import { fetchHandler } from "../../../lib/server/handlers/fetch.ts";
import type { BrokerServices } from "../../../lib/server/services.ts";
import { BrokerMetrics } from "../../../lib/server/broker_metrics.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { onePartitionImage, TEST_TOPIC_ID } from "../../_helpers/images.ts";

const TOPIC_ID = TEST_TOPIC_ID;
const image = (leader: number) => onePartitionImage([1, 2], leader);

const REQUEST = {
  replicaId: -1,
  maxWaitMs: 30_000,
  minBytes: 1,
  maxBytes: 1 << 20,
  isolationLevel: 0,
  sessionId: 0,
  sessionEpoch: -1,
  topics: [{
    topic: "t",
    topicId: TOPIC_ID,
    partitions: [{
      partition: 0,
      currentLeaderEpoch: -1,
      fetchOffset: 0n,
      logStartOffset: -1n,
      partitionMaxBytes: 1 << 20,
    }],
  }],
  forgottenTopicsData: [],
  rackId: "",
} as unknown as FetchRequest;

async function longPoll(
  rm: ReplicaManager,
  current: () => MetadataImage,
): Promise<{ response: Promise<FetchResponse> }> {
  const services = {
    replicas: rm,
    timers: systemTimers,
    metrics: new BrokerMetrics(),
    metadata: {
      get image() {
        return current();
      },
    },
  } as unknown as BrokerServices;
  const ctx = { header: { apiVersion: 11 }, services } as unknown as RequestContext;
  const reply = await fetchHandler.handle(ctx, REQUEST);
  if (reply.kind !== "respondWhenReady") throw new Error(`Unexpected reply ${reply.kind}`);
  // Wrapped: an async function returning the promise itself would wait for it.
  return { response: reply.ready.then(() => reply.build() as unknown as FetchResponse) };
}

for (
  const [name, end] of [
    ["the partition closes (topic deleted)", (rm: ReplicaManager) => {
      rm.getPartition("t", 0)!.markClosed();
      return Promise.resolve();
    }],
    ["leadership moves away", (rm: ReplicaManager) => rm.applyImage(image(2))],
  ] as const
) {
  Deno.test(`Fetch long poll answers NOT_LEADER_OR_FOLLOWER at once when ${name}`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tidelog-fetch-" });
    const rm = new ReplicaManager({
      topicsDir: dir,
      nodeId: 1,
      flush: { kind: "always" },
      clock: new ManualClock(1),
    });
    try {
      let img = image(1);
      await rm.applyImage(img);
      const { response } = await longPoll(rm, () => img);
      const started = performance.now();
      if (name.startsWith("leadership")) img = image(2);
      await end(rm);
      const r = await response;
      assert.ok(performance.now() - started < 5000, "answered long before maxWaitMs");
      assert.equal(r.responses[0]!.partitions[0]!.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
    } finally {
      await rm.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
