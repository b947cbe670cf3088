/**
 * Fetch (key 1): v4-17.
 *
 * Behaviour: reads whole stored batches from each requested partition, below the high
 * watermark, within `partitionMaxBytes` per partition and `maxBytes` per response; the
 * first batch of the response is returned even when it is larger than those limits
 * (KIP-74), so a consumer can always make progress. If fewer than `minBytes` are
 * available the request waits up to `maxWaitMs`, woken by high-watermark advances on its
 * partitions (no polling). OFFSET_OUT_OF_RANGE for offsets below the log start or past
 * the log end; offsets between the high watermark and the log end read as empty.
 * Leader epochs (v9+) are checked: older → FENCED_LEADER_EPOCH, newer →
 * UNKNOWN_LEADER_EPOCH. Only the partition's leader serves fetches; elsewhere the answer
 * is NOT_LEADER_OR_FOLLOWER with the current leader and its epoch (v12+) and its
 * endpoint in `nodeEndpoints` (v16+, KIP-951), so clients re-route at once.
 *
 * Replica fetches (replica id >= 0, DESIGN §8): a follower reads up to the log end, not
 * the high watermark; its fetch offset tells the leader how far it has durably
 * replicated, which moves the high watermark and may bring it back into the ISR. Its
 * long-poll is woken by appends as well as high-watermark moves.
 *
 * Version notes: v0-3 need down-conversion to magic 0/1, which is not done, so they are
 * not served. v7+ fetch sessions (KIP-227): no session is ever created (sessionId 0 in
 * every response), which clients treat as "send full fetch requests"; an incremental
 * request naming a session gets FETCH_SESSION_ID_NOT_FOUND. v13+ names topics by id
 * (unknown → UNKNOWN_TOPIC_ID).
 *
 * Transactions (KIP-98): every answer carries the last stable offset. A read_committed
 * fetch (isolation level 1) reads below it, not the high watermark, and gets the aborted
 * transactions that overlap what it may read (producer id, first offset), so the client
 * drops their records; read_uncommitted gets `abortedTransactions: null`.
 */
import {
  ApiKey,
  ErrorCode,
  type FetchRequest,
  type FetchResponse,
  ZERO_UUID,
} from "../../protocol/mod.ts";
import type { DeepPartial } from "../../protocol/mod.ts";
import type { Partition } from "../../replication/mod.ts";
import { errorCodeOf } from "../../util/errors.ts";
import { LogSlice } from "../../log/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { Timers } from "../../runtime/timers.ts";
import type { BrokerServices } from "../services.ts";
import { leaderForClients, nodeEndpoints } from "./metadata.ts";

type PartitionData = DeepPartial<FetchResponse["responses"][number]["partitions"][number]>;

const EMPTY: Uint8Array = new Uint8Array(0);

/** One requested partition, resolved. */
interface FetchTarget {
  topicIndex: number;
  /** Read up to the log end (a follower) rather than the high watermark. */
  toLogEnd: boolean;
  partitionIndex: number;
  partition: Partition | undefined;
  /** Set when the partition cannot be read at all. */
  error: number;
  fetchOffset: number;
  partitionMaxBytes: number;
  /** A consumer with isolation_level=read_committed. */
  readCommitted: boolean;
  /** The current leader, for NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH answers. */
  leader?: { leaderId: number; leaderEpoch: number };
}

function resolveTargets(
  services: BrokerServices,
  req: FetchRequest,
  version: number,
  replicaId: number,
): {
  responses: { topic: string; topicId: string; partitions: PartitionData[] }[];
  targets: FetchTarget[];
} {
  const image = services.metadata.image;
  const responses: { topic: string; topicId: string; partitions: PartitionData[] }[] = [];
  const targets: FetchTarget[] = [];
  req.topics.forEach((t, topicIndex) => {
    const topic = version >= 13 ? image.topicsById.get(t.topicId) : image.topic(t.topic);
    const missing = version >= 13
      ? ErrorCode.UNKNOWN_TOPIC_ID
      : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    responses.push({
      topic: t.topic,
      topicId: topic?.topicId ?? t.topicId ?? ZERO_UUID,
      partitions: [],
    });
    for (const p of t.partitions) {
      const partition = topic ? services.replicas.getPartition(topic.name, p.partition) : undefined;
      let error: number = ErrorCode.NONE;
      if (!topic) error = missing;
      else if (!topic.partitions[p.partition]) error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      else if (!partition || !partition.isLeader) error = ErrorCode.NOT_LEADER_OR_FOLLOWER;
      if (
        error === ErrorCode.NONE && partition && p.currentLeaderEpoch !== -1 &&
        p.currentLeaderEpoch !== partition.leaderEpoch
      ) {
        error = p.currentLeaderEpoch < partition.leaderEpoch
          ? ErrorCode.FENCED_LEADER_EPOCH
          : ErrorCode.UNKNOWN_LEADER_EPOCH;
      }
      if (
        error === ErrorCode.NONE && partition && replicaId >= 0 &&
        Number(p.fetchOffset) <= partition.log.logEndOffset
      ) {
        // A fetch offset past our log end is answered OFFSET_OUT_OF_RANGE below (the
        // follower truncates again); it says nothing about the follower's progress.
        services.replicas.onFollowerFetch(
          partition,
          replicaId,
          Number(p.fetchOffset),
          Number(p.logStartOffset),
        );
      }
      targets.push({
        topicIndex,
        toLogEnd: replicaId >= 0,
        partitionIndex: p.partition,
        partition,
        error,
        fetchOffset: Number(p.fetchOffset),
        partitionMaxBytes: p.partitionMaxBytes,
        readCommitted: replicaId < 0 && req.isolationLevel === 1,
        ...(error !== ErrorCode.NONE && topic?.partitions[p.partition]
          ? {
            leader: {
              leaderId: leaderForClients(services, topic.partitions[p.partition]!.leader),
              leaderEpoch: topic.partitions[p.partition]!.leaderEpoch,
            },
          }
          : {}),
      });
    }
  });
  return { responses, targets };
}

/** Reads every target once; returns the partition entries and the bytes gathered. */
function readAll(
  targets: FetchTarget[],
  maxBytes: number,
): { entries: PartitionData[]; bytes: number; errors: number } {
  let remaining = maxBytes;
  let bytes = 0;
  let errors = 0;
  const entries = targets.map((t): PartitionData => {
    const p = t.partition;
    const base = {
      partitionIndex: t.partitionIndex,
      abortedTransactions: null,
      preferredReadReplica: -1,
    };
    let code = t.error;
    // Re-checked on every read: a long poll may outlive the leadership or the topic, and
    // must then answer (a closed partition would otherwise wake it forever).
    if (p && code === ErrorCode.NONE && (p.closed || !p.isLeader)) {
      code = ErrorCode.NOT_LEADER_OR_FOLLOWER;
    }
    if (!p || code !== ErrorCode.NONE) {
      errors++;
      return {
        ...base,
        errorCode: code,
        highWatermark: -1n,
        lastStableOffset: -1n,
        logStartOffset: -1n,
        records: EMPTY,
        ...(t.leader ? { currentLeader: t.leader } : {}),
      };
    }
    const hw = p.highWatermark;
    const lso = p.lastStableOffset;
    const readEnd = t.toLogEnd ? p.log.logEndOffset : t.readCommitted ? lso : hw;
    const marks = {
      highWatermark: BigInt(hw),
      lastStableOffset: BigInt(lso),
      logStartOffset: BigInt(p.log.logStartOffset),
    };
    try {
      let records: LogSlice | Uint8Array = EMPTY;
      if (t.fetchOffset < readEnd && t.fetchOffset >= p.log.logStartOffset) {
        const limit = Math.max(0, Math.min(t.partitionMaxBytes, remaining));
        // Located now, copied from the file into the response frame when it is encoded.
        records = p.log.slice(t.fetchOffset, limit, {
          maxOffset: readEnd,
          minOneMessage: bytes === 0,
        });
      } else if (t.fetchOffset > p.log.logEndOffset || t.fetchOffset < p.log.logStartOffset) {
        p.log.slice(t.fetchOffset, 0); // throws OffsetOutOfRangeError with the details
      }
      bytes += records.byteLength;
      remaining -= records.byteLength;
      // Kafka's fetchUpperBoundOffset: only the transactions the returned data can hold.
      const upper = records instanceof LogSlice ? records.endOffset() : readEnd;
      const abortedTransactions = t.readCommitted && records.byteLength > 0
        ? p.producerState.state.abortedTransactions(t.fetchOffset, upper).map((a) => ({
          producerId: a.producerId,
          firstOffset: BigInt(a.firstOffset),
        }))
        : t.readCommitted
        ? []
        : null;
      return { ...base, ...marks, abortedTransactions, errorCode: ErrorCode.NONE, records };
    } catch (err) {
      errors++;
      // Consumers get Kafka's unknown marks with an error; followers get ours, which tell
      // them where the leader's log starts (an out-of-range follower restarts there).
      const errorMarks = t.toLogEnd
        ? marks
        : { highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n };
      return { ...base, ...errorMarks, errorCode: errorCodeOf(err), records: EMPTY };
    }
  });
  return { entries, bytes, errors };
}

function assemble(
  services: BrokerServices,
  responses: { topic: string; topicId: string; partitions: PartitionData[] }[],
  targets: FetchTarget[],
  entries: PartitionData[],
): DeepPartial<FetchResponse> {
  const out = responses.map((r) => ({ ...r, partitions: [] as PartitionData[] }));
  targets.forEach((t, i) => out[t.topicIndex]!.partitions.push(entries[i]!));
  const leaders = targets.flatMap((t) =>
    t.leader && t.leader.leaderId >= 0 ? [t.leader.leaderId] : []
  );
  return {
    errorCode: ErrorCode.NONE,
    sessionId: 0,
    responses: out,
    nodeEndpoints: nodeEndpoints(services, leaders),
  };
}

/** Consumers' bytes out and failed partitions, per topic, for /metrics (replicas excluded). */
function countTraffic(
  services: BrokerServices,
  responses: { topic: string; topicId: string }[],
  targets: FetchTarget[],
  entries: PartitionData[],
): void {
  targets.forEach((t, i) => {
    if (t.toLogEnd) return;
    const e = entries[i]!;
    const name = t.partition?.topic ?? responses[t.topicIndex]!.topic;
    if (e.errorCode !== ErrorCode.NONE) services.metrics.failedFetch.inc({ topic: name });
    else if (e.records !== undefined && e.records !== null && e.records.byteLength > 0) {
      services.metrics.bytesOut.inc({ topic: name }, e.records.byteLength);
    }
  });
}

export const fetchHandler: ApiHandler<typeof ApiKey.Fetch> = {
  apiKey: ApiKey.Fetch,
  minVersion: 4,
  maxVersion: 17,
  handle(ctx, req: FetchRequest) {
    const version = ctx.header.apiVersion;
    if (version >= 7 && req.sessionId !== 0) {
      return respond({
        errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
        sessionId: 0,
        responses: [],
      });
    }
    if (version >= 7 && req.sessionEpoch > 0) {
      return respond({
        errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH,
        sessionId: 0,
        responses: [],
      });
    }
    const replicaId = version >= 15 ? req.replicaState.replicaId : req.replicaId;
    const { responses, targets } = resolveTargets(ctx.services, req, version, replicaId);
    const maxBytes = Math.max(0, req.maxBytes);
    const first = readAll(targets, maxBytes);
    // The slices are read again when the response is built: the log may change between
    // now and the encoding, and locating them costs a few header reads.
    const build = () => {
      const { entries } = readAll(targets, maxBytes);
      countTraffic(ctx.services, responses, targets, entries);
      return assemble(ctx.services, responses, targets, entries);
    };
    if (
      first.bytes >= req.minBytes || first.errors > 0 || req.maxWaitMs <= 0 || targets.length === 0
    ) {
      return { kind: "respondWhenReady", ready: Promise.resolve(), build };
    }
    return {
      kind: "respondWhenReady",
      ready: longPoll(ctx.services.timers, targets, req, maxBytes),
      build,
    };
  },
  errorResponse: (req, code) => ({
    errorCode: code,
    sessionId: 0,
    responses: req.topics.map((t) => ({
      topic: t.topic,
      topicId: t.topicId,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partition,
        errorCode: code,
        highWatermark: -1n,
        records: EMPTY,
      })),
    })),
  }),
};

/**
 * Resolves once the requested partitions hold at least `minBytes` readable bytes, or
 * `maxWaitMs` passes, or a partition fails; re-counts only when a high watermark moves.
 */
function longPoll(
  timers: Timers,
  targets: FetchTarget[],
  req: FetchRequest,
  maxBytes: number,
): Promise<void> {
  return new Promise((resolve) => {
    const cancels: (() => void)[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      for (const c of cancels) c();
      resolve();
    };
    const arm = () => {
      for (const c of cancels.splice(0)) c();
      for (const t of targets) {
        if (t.partition) cancels.push(t.partition.onChange(onAdvance));
      }
    };
    const onAdvance = () => {
      if (done) return;
      const { bytes, errors } = readAll(targets, maxBytes);
      if (bytes >= req.minBytes || errors > 0) finish();
      else arm();
    };
    const timer = timers.setTimeout(finish, req.maxWaitMs);
    arm();
  });
}
