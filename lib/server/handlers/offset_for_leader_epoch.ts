/**
 * OffsetForLeaderEpoch (key 23): v0-4.
 *
 * Behaviour: per partition, the end offset of the requested leader epoch from the
 * partition's leader-epoch cache, as Kafka's `Partition.lastOffsetForLeaderEpoch`: the
 * largest epoch <= the requested one, ending where the next epoch starts, or at the log
 * end for the latest epoch (KIP-101, KIP-279). Consumers use it after a leader change to
 * detect truncation (KIP-320), followers before fetching. Like Kafka, the answer is not
 * capped at the high watermark, for consumers (replicaId -1) or followers. An unknown
 * epoch answers NONE with epoch -1 and end offset -1 (UNDEFINED). currentLeaderEpoch
 * (v2+, -1 = no check) is checked first: older → FENCED_LEADER_EPOCH, newer →
 * UNKNOWN_LEADER_EPOCH. A partition not hosted here: NOT_LEADER_OR_FOLLOWER if the
 * metadata knows it, else UNKNOWN_TOPIC_OR_PARTITION; hosted but led by another node:
 * NOT_LEADER_OR_FOLLOWER.
 *
 * Version notes: v0-1 are deprecated but cheap, so served (v0 has no leaderEpoch in the
 * response). v2 adds currentLeaderEpoch and throttleTimeMs (librdkafka uses v2), v3 adds
 * replicaId (ignored: any caller may ask), v4 is flexible (Java clients).
 */
import {
  ApiKey,
  ErrorCode,
  type OffsetForLeaderEpochRequest,
  type OffsetForLeaderEpochResponse,
} from "../../protocol/mod.ts";
import type { DeepPartial } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";

type EpochEndOffset = DeepPartial<
  OffsetForLeaderEpochResponse["topics"][number]["partitions"][number]
>;

function answer(
  services: BrokerServices,
  topic: string,
  q: OffsetForLeaderEpochRequest["topics"][number]["partitions"][number],
): EpochEndOffset {
  const base = { partition: q.partition, leaderEpoch: -1, endOffset: -1n };
  const p = services.replicas.getPartition(topic, q.partition);
  const state = services.metadata.image.topic(topic)?.partitions[q.partition];
  if (!p) {
    return {
      ...base,
      errorCode: state ? ErrorCode.NOT_LEADER_OR_FOLLOWER : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    };
  }
  if (q.currentLeaderEpoch !== -1 && q.currentLeaderEpoch !== p.leaderEpoch) {
    return {
      ...base,
      errorCode: q.currentLeaderEpoch < p.leaderEpoch
        ? ErrorCode.FENCED_LEADER_EPOCH
        : ErrorCode.UNKNOWN_LEADER_EPOCH,
    };
  }
  if (!p.isLeader) {
    return { ...base, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
  }
  const r = p.leaderEpochCache.endOffsetFor(q.leaderEpoch, p.log.logEndOffset);
  return {
    ...base,
    errorCode: ErrorCode.NONE,
    leaderEpoch: r.epoch,
    endOffset: BigInt(r.endOffset),
  };
}

export const offsetForLeaderEpochHandler: ApiHandler<typeof ApiKey.OffsetForLeaderEpoch> = {
  apiKey: ApiKey.OffsetForLeaderEpoch,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, req: OffsetForLeaderEpochRequest) {
    const topics = req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((q) => answer(ctx.services, t.topic, q)),
    }));
    return respond({ throttleTimeMs: 0, topics });
  },
  errorResponse: (req, code) => ({
    topics: req.topics.map((t) => ({
      topic: t.topic,
      partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: code })),
    })),
  }),
};
