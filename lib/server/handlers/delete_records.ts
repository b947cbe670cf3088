/**
 * DeleteRecords (key 21): v0-2.
 *
 * Behaviour: on the leader of each partition, moves the log start to the requested
 * offset (-1: the high watermark); the segments wholly below it are deleted, consumers
 * can no longer read below it, and followers move their own log start when their next
 * fetch answer carries the leader's. The answer for a partition waits (up to
 * `timeoutMs`) until every replica on a live broker reports a log start at or past the
 * offset, then gives that low watermark (Kafka's DelayedDeleteRecords); otherwise
 * REQUEST_TIMED_OUT. An offset past the high watermark or below -1 gets
 * OFFSET_OUT_OF_RANGE; a partition of a missing topic UNKNOWN_TOPIC_OR_PARTITION; one
 * this node does not lead NOT_LEADER_OR_FOLLOWER.
 *
 * Version notes: v2+ is flexible.
 */
import type { Partition } from "../../replication/mod.ts";
import { ApiKey, type DeleteRecordsRequest, ErrorCode } from "../../protocol/mod.ts";
import { errorCodeOf } from "../../util/errors.ts";
import { type ApiHandler, type RequestContext, respond } from "../handler.ts";

interface PartitionResult {
  partitionIndex: number;
  lowWatermark: bigint;
  errorCode: number;
}

/** Resolves with the low watermark once it reaches `offset`, or null at the deadline. */
function waitForLowWatermark(
  ctx: RequestContext,
  partition: Partition,
  offset: number,
  deadlineMs: number,
): Promise<number | null> {
  const { services } = ctx;
  const image = () => services.metadata.image;
  const alive = (b: number) => {
    const r = image().brokers.get(b);
    return r !== undefined && !r.fenced;
  };
  const low = () => partition.lowWatermark(alive, services.config.nodeId);
  return new Promise((resolve) => {
    let cancel = () => {};
    const check = () => {
      if (partition.closed || !partition.isLeader) return finish(null);
      const now = low();
      if (now >= offset) return finish(now);
      if (services.clock.nowMs() >= deadlineMs) return finish(null);
      cancel = partition.onChange(check);
    };
    const timer = services.timers.setTimeout(
      () => finish(null),
      Math.max(0, deadlineMs - services.clock.nowMs()),
    );
    let done = false;
    function finish(value: number | null) {
      if (done) return;
      done = true;
      cancel();
      services.timers.clearTimeout(timer);
      resolve(value);
    }
    check();
  });
}

/**
 * Moves the log start of one partition now; the returned promise is its answer, which
 * waits for the followers.
 */
async function deletePartition(
  ctx: RequestContext,
  topic: string,
  partitionIndex: number,
  requested: bigint,
  deadlineMs: number,
): Promise<{ answer: Promise<PartitionResult> }> {
  const { services } = ctx;
  const fail = (errorCode: number) => ({
    answer: Promise.resolve<PartitionResult>({ partitionIndex, lowWatermark: -1n, errorCode }),
  });
  const t = services.metadata.image.topic(topic);
  if (!t || partitionIndex < 0 || partitionIndex >= t.partitions.length) {
    return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  }
  const partition = services.replicas.getPartition(topic, partitionIndex);
  if (!partition || !partition.isLeader) return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER);
  const hw = partition.highWatermark;
  const offset = requested === -1n ? hw : Number(requested);
  if (offset < 0 || offset > hw) return fail(ErrorCode.OFFSET_OUT_OF_RANGE);
  try {
    await services.replicas.deleteRecordsBefore(partition, offset);
  } catch (err) {
    ctx.log.warn("DeleteRecords on {topic}-{partition} failed: {error}", {
      topic,
      partition: partitionIndex,
      error: String(err),
    });
    return fail(errorCodeOf(err));
  }
  return {
    answer: waitForLowWatermark(ctx, partition, offset, deadlineMs).then((low) =>
      low === null
        ? { partitionIndex, lowWatermark: -1n, errorCode: ErrorCode.REQUEST_TIMED_OUT }
        : { partitionIndex, lowWatermark: BigInt(low), errorCode: ErrorCode.NONE }
    ),
  };
}

export const deleteRecordsHandler: ApiHandler<typeof ApiKey.DeleteRecords> = {
  apiKey: ApiKey.DeleteRecords,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, req: DeleteRecordsRequest) {
    const deadlineMs = ctx.services.clock.nowMs() + Math.max(0, req.timeoutMs);
    // Log starts move in arrival order; the waits for followers overlap.
    const waits: { name: string; partitions: Promise<PartitionResult>[] }[] = [];
    for (const t of req.topics) {
      const partitions: Promise<PartitionResult>[] = [];
      for (const p of t.partitions) {
        partitions.push(
          (await deletePartition(ctx, t.name, p.partitionIndex, p.offset, deadlineMs)).answer,
        );
      }
      waits.push({ name: t.name, partitions });
    }
    const response = Promise.all(
      waits.map(async (t) => ({ name: t.name, partitions: await Promise.all(t.partitions) })),
    ).then((topics) => ({ topics }));
    return respond(response);
  },
  errorResponse: (req, code) => ({
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        lowWatermark: -1n,
        errorCode: code,
      })),
    })),
  }),
};
