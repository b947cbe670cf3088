/**
 * ListOffsets (key 2): v1-10.
 *
 * Behaviour: per partition, the offset for a timestamp: -2 EARLIEST (log start), -1
 * LATEST (the high watermark, which is also the last stable offset since there are no
 * transactions), -3 MAX_TIMESTAMP (v7+), -4 EARLIEST_LOCAL (v8+, the log start: all data
 * is local), -5 LATEST_TIERED (v9+, -1: nothing is tiered), otherwise the first record
 * whose timestamp is at or after it (offset -1 if none). Leader epochs (v4+) are checked
 * as in Fetch.
 *
 * Version notes: v0 (several old-style offsets per partition) is deprecated and not
 * served. The timestamp lookup is exact for uncompressed batches; for compressed ones
 * it answers with the first batch whose max timestamp reaches the target.
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

/** Offset and timestamp for one lookup, Kafka's -1/-1 when nothing matches. */
function lookup(
  p: Partition,
  timestamp: number,
  version: number,
): { offset: number; timestamp: number } {
  const none = { offset: -1, timestamp: -1 };
  switch (timestamp) {
    case LATEST:
      return { offset: p.highWatermark, timestamp: -1 };
    case EARLIEST:
      return { offset: p.log.logStartOffset, timestamp: -1 };
    case MAX_TIMESTAMP:
      if (version < 7) break;
      return p.log.maxTimestamp() ?? none;
    case EARLIEST_LOCAL:
      if (version < 8) break;
      return { offset: p.log.logStartOffset, timestamp: -1 };
    case LATEST_TIERED:
      if (version < 9) break;
      return none;
  }
  if (timestamp < 0) {
    throw new TidelogError(
      ErrorCode.INVALID_REQUEST,
      `Timestamp ${timestamp} is not valid for ListOffsets v${version}`,
    );
  }
  const found = p.log.offsetForTimestamp(timestamp);
  // A record past the high watermark is not visible to consumers yet.
  return found && found.offset < p.highWatermark ? found : none;
}

export const listOffsetsHandler: ApiHandler<typeof ApiKey.ListOffsets> = {
  apiKey: ApiKey.ListOffsets,
  minVersion: 1,
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
        if (!p) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
        if (q.currentLeaderEpoch !== -1 && q.currentLeaderEpoch !== p.leaderEpoch) {
          return {
            ...base,
            errorCode: q.currentLeaderEpoch < p.leaderEpoch
              ? ErrorCode.FENCED_LEADER_EPOCH
              : ErrorCode.UNKNOWN_LEADER_EPOCH,
          };
        }
        try {
          const r = lookup(p, Number(q.timestamp), version);
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
