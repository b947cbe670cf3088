/**
 * ListOffsets (key 2): v1-10.
 *
 * Behaviour: per partition, the offset for a timestamp: -2 EARLIEST (log start), -1
 * LATEST (the high watermark; the last stable offset for isolation_level=read_committed,
 * v2+), -3 MAX_TIMESTAMP (v7+), -4 EARLIEST_LOCAL (v8+, the log start: all data
 * is local), -5 LATEST_TIERED (v9+, -1: nothing is tiered), otherwise the first record
 * whose timestamp is at or after it (offset -1 if none). Leader epochs (v4+) are checked
 * as in Fetch.
 *
 * Who may ask whom, as Kafka's ReplicaManager.fetchOffset and
 * Partition.fetchOffsetForTimestamp decide: only the partition's leader answers
 * (`fetchOnlyFromLeader`), except to replica id -2 (DEBUGGING_REPLICA_ID), which any
 * replica answers; elsewhere NOT_LEADER_OR_FOLLOWER (the response has no KIP-951
 * current-leader field, so clients refresh their metadata). A consumer (replica id -1)
 * sees only offsets below the high watermark (LATEST is the high watermark; a lookup
 * that lands at or above it answers -1); any other replica id sees the whole log (LATEST
 * is the log end). A consumer asking a leader whose high watermark has not yet reached the
 * start of its leader epoch (just after an election) gets OFFSET_NOT_AVAILABLE
 * (LEADER_NOT_AVAILABLE before v5) for LATEST and for lookups with no visible answer, so
 * it retries instead of jumping back to an older high watermark. A partition this node
 * holds no replica of answers NOT_LEADER_OR_FOLLOWER when the topic has it (stale client
 * metadata), UNKNOWN_TOPIC_OR_PARTITION otherwise.
 *
 * Version notes: v0 (Kafka 3.x still served it; Burrow and other old tools send it)
 * answers up to `maxNumOffsets` old-style offsets, newest first, as Kafka's
 * legacyFetchOffsetsBefore: segment base offsets and the log end, from the one for the
 * timestamp (LATEST: the log end, EARLIEST: the first segment, otherwise the last segment
 * whose newest record is at or before it) down; a consumer never gets one above the high
 * watermark (the high watermark takes their place). Where Kafka compared a segment file's
 * modification time, Tidelog compares its newest record's timestamp. The timestamp lookup
 * of v1+ is exact for uncompressed batches; for compressed ones it answers with the first
 * batch whose max timestamp reaches the target.
 */
import {
  ApiKey,
  ErrorCode,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
} from "../../protocol/mod.ts";
import type { DeepPartial } from "../../protocol/mod.ts";
import type { Partition } from "../../replication/mod.ts";
import { TidelogError } from "../../util/errors.ts";
import { type ApiHandler, respond } from "../handler.ts";

type PartitionResponse = DeepPartial<ListOffsetsResponse["topics"][number]["partitions"][number]>;

const LATEST = -1;
const EARLIEST = -2;
const MAX_TIMESTAMP = -3;
const EARLIEST_LOCAL = -4;
const LATEST_TIERED = -5;

/** Kafka's ListOffsetsRequest.CONSUMER_REPLICA_ID: an ordinary client. */
const CONSUMER_REPLICA_ID = -1;
/** Kafka's ListOffsetsRequest.DEBUGGING_REPLICA_ID: may read any replica, up to its log end. */
const DEBUGGING_REPLICA_ID = -2;

/** Offset and timestamp for one lookup, Kafka's -1/-1 when nothing matches. */
function lookup(
  p: Partition,
  timestamp: number,
  version: number,
  replicaId: number,
  readCommitted: boolean,
): { offset: number; timestamp: number } {
  const none = { offset: -1, timestamp: -1 };
  const isConsumer = replicaId === CONSUMER_REPLICA_ID;
  // Kafka's lastFetchableOffset: read_committed consumers read below the last stable
  // offset, others below the high watermark; replicas and debug tools up to the log end.
  const lastFetchable = !isConsumer
    ? p.log.logEndOffset
    : readCommitted
    ? p.lastStableOffset
    : p.highWatermark;
  const lagging = isConsumer && p.isLeader && epochStartOffset(p) > p.highWatermark;
  const notAvailable = () =>
    new TidelogError(
      version >= 5 ? ErrorCode.OFFSET_NOT_AVAILABLE : ErrorCode.LEADER_NOT_AVAILABLE,
      `The high watermark ${p.highWatermark} of ${p.name} has not reached the start of leader epoch ${p.leaderEpoch} yet`,
    );
  let found: { offset: number; timestamp: number } | null;
  switch (timestamp) {
    case LATEST:
      if (lagging) throw notAvailable();
      return { offset: lastFetchable, timestamp: -1 };
    case EARLIEST:
      return { offset: p.log.logStartOffset, timestamp: -1 };
    case EARLIEST_LOCAL:
      if (version < 8) throw invalidTimestamp(timestamp, version);
      return { offset: p.log.logStartOffset, timestamp: -1 };
    case MAX_TIMESTAMP:
      if (version < 7) throw invalidTimestamp(timestamp, version);
      found = p.log.maxTimestamp();
      break;
    case LATEST_TIERED:
      if (version < 9) throw invalidTimestamp(timestamp, version);
      // Kafka answers -1 at once for a topic without tiered storage.
      return none;
    default:
      if (timestamp < 0) throw invalidTimestamp(timestamp, version);
      found = p.log.offsetForTimestamp(timestamp);
  }
  // A record past what the asker may read is not visible (yet): Kafka answers -1, or
  // OFFSET_NOT_AVAILABLE while the high watermark lags the epoch start.
  if (found !== null && found.offset < lastFetchable) return found;
  if (lagging) throw notAvailable();
  return none;
}

function invalidTimestamp(timestamp: number, version: number): TidelogError {
  return new TidelogError(
    ErrorCode.INVALID_REQUEST,
    `Timestamp ${timestamp} is not valid for ListOffsets v${version}`,
  );
}

/**
 * Where the current leader epoch starts in the log (Kafka's leaderEpochStartOffsetOpt,
 * the log end when this node became leader); -1 if the cache does not know the epoch.
 */
function epochStartOffset(p: Partition): number {
  const latest = p.leaderEpochCache.latestEntry;
  return latest !== undefined && latest.epoch === p.leaderEpoch ? latest.startOffset : -1;
}

/** ListOffsets v0: old-style offsets, newest first (see the module doc). */
function legacyOffsets(
  p: Partition,
  timestamp: number,
  maxNumOffsets: number,
  replicaId: number,
  nowMs: number,
): bigint[] {
  const points = p.log.segmentSummaries().map((s) => ({
    offset: s.baseOffset,
    time: s.maxTimestamp,
  }));
  if ((points.at(-1)?.offset ?? 0) < p.log.logEndOffset) {
    points.push({ offset: p.log.logEndOffset, time: nowMs });
  }
  let start: number;
  if (timestamp === LATEST) start = points.length - 1;
  else if (timestamp === EARLIEST) start = 0;
  else {
    start = -1;
    for (let i = 0; i < points.length; i++) if (points[i]!.time <= timestamp) start = i;
  }
  const out: number[] = [];
  for (let i = start; i >= 0 && out.length < maxNumOffsets; i--) out.push(points[i]!.offset);
  const hw = p.highWatermark;
  if (replicaId === CONSUMER_REPLICA_ID && out.some((o) => o > hw)) {
    // Kafka: hw +: allOffsets.dropWhile(_ > hw) (the offsets are newest first).
    const firstAtOrBelow = out.findIndex((o) => o <= hw);
    return [hw, ...(firstAtOrBelow < 0 ? [] : out.slice(firstAtOrBelow))].map(BigInt);
  }
  return out.map(BigInt);
}

export const listOffsetsHandler: ApiHandler<typeof ApiKey.ListOffsets> = {
  apiKey: ApiKey.ListOffsets,
  minVersion: 0,
  maxVersion: 10,
  handle(ctx, req: ListOffsetsRequest) {
    const { services } = ctx;
    const version = ctx.header.apiVersion;
    const topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((q): PartitionResponse => {
        const base = {
          partitionIndex: q.partitionIndex,
          timestamp: -1n,
          offset: -1n,
          leaderEpoch: -1,
        };
        const p = services.replicas.getPartition(t.name, q.partitionIndex);
        if (!p) {
          const known = services.metadata.image.topic(t.name)?.partitions[q.partitionIndex];
          return {
            ...base,
            errorCode: known
              ? ErrorCode.NOT_LEADER_OR_FOLLOWER
              : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          };
        }
        // As Kafka's Partition.getLocalLog: the epoch is checked before the leadership.
        if (q.currentLeaderEpoch !== -1 && q.currentLeaderEpoch !== p.leaderEpoch) {
          return {
            ...base,
            errorCode: q.currentLeaderEpoch < p.leaderEpoch
              ? ErrorCode.FENCED_LEADER_EPOCH
              : ErrorCode.UNKNOWN_LEADER_EPOCH,
          };
        }
        if (p.closed || (!p.isLeader && req.replicaId !== DEBUGGING_REPLICA_ID)) {
          return { ...base, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
        }
        try {
          if (version === 0) {
            return {
              ...base,
              errorCode: ErrorCode.NONE,
              oldStyleOffsets: legacyOffsets(
                p,
                Number(q.timestamp),
                q.maxNumOffsets,
                req.replicaId,
                services.clock.nowMs(),
              ),
            };
          }
          const r = lookup(
            p,
            Number(q.timestamp),
            version,
            req.replicaId,
            version >= 2 && req.isolationLevel === 1,
          );
          return {
            ...base,
            errorCode: ErrorCode.NONE,
            offset: BigInt(r.offset),
            timestamp: BigInt(r.timestamp),
            leaderEpoch: r.offset === -1 ? -1 : p.leaderEpoch,
          };
        } catch (err) {
          if (!(err instanceof TidelogError)) throw err;
          return { ...base, errorCode: err.code };
        }
      }),
    }));
    return respond({ topics });
  },
  errorResponse: (req, code) => ({
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })),
    })),
  }),
};
