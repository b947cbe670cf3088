/**
 * Followers' replica fetchers (DESIGN §8): one fetcher per leader broker, multiplexing
 * every partition this node follows on that broker over one Kafka connection.
 *
 * For each partition a fetcher first truncates (KIP-101/279): it asks the leader, with
 * OffsetForLeaderEpoch, where the follower's latest leader epoch ends and truncates its
 * log there ({@linkcode followerTruncationPoint}), repeating while the answer names an
 * older epoch. Each round drops at least the epoch it asked about (the epoch cache is cut
 * at the truncation point even when the log already ends there), so this ends; rounds
 * that change nothing still back off. Then it fetches with the Kafka Fetch API (replica
 * id = this node's id, fetch offset = the log's DURABLE end), appends the batches byte for
 * byte, waits for them to be fsynced, and only then fetches again: the leader reads a
 * follower's fetch offset as its durable end, so a partition whose log end is ahead of
 * its durable end (an fsync running, or failed) is not fetched. The leader's high
 * watermark comes back in every response.
 *
 * Partitions are independent: one partition's bad batch, failed append or failed fsync
 * fails that partition only (it retries after a back-off), and nothing of a response is
 * reported (high watermarks, the next fetch) before every append it caused is durable
 * or has failed.
 *
 * Errors: FENCED_LEADER_EPOCH parks the partition until the metadata names a new leader
 * or epoch ({@linkcode ReplicaFetcherManager.follow}); UNKNOWN_LEADER_EPOCH /
 * NOT_LEADER_OR_FOLLOWER (the leader has not seen the new epoch yet) and connection
 * failures retry after a short back-off; OFFSET_OUT_OF_RANGE truncates again, or restarts
 * the log at the leader's log start when the leader no longer has what we lack.
 */
import { KafkaConnection } from "../client/mod.ts";
import type { BrokerEndpoint } from "../metadata/mod.ts";
import { ApiKey, ErrorCode } from "../protocol/mod.ts";
import {
  type BatchHeader,
  lastOffsetOf,
  splitBatches,
  validateBatch,
} from "../protocol/record_batch.ts";
import { denoNet, type Network } from "../runtime/net.ts";
import { systemTimers, type Timers } from "../runtime/timers.ts";
import { BufferPool } from "../util/buffer_pool.ts";
import type { Clock } from "../util/clock.ts";
import { getLogger } from "../util/log.ts";
import { withTimeout } from "../util/timeout.ts";
import { UNDEFINED_EPOCH } from "./leader_epoch_cache.ts";
import type { Partition } from "./partition.ts";
import { followerTruncationPoint } from "./truncation.ts";

const log = getLogger(["tidelog", "replication", "fetcher"]);

/** Kafka's defaults, except a shorter wait so new partitions join a fetcher sooner. */
const FETCH_MAX_WAIT_MS = 250;
const FETCH_MAX_BYTES = 10 * 1024 * 1024;
const PARTITION_MAX_BYTES = 1024 * 1024;
const BACKOFF_MS = 100;
const REQUEST_TIMEOUT_MS = 5000;
/** A connect to a blackholed address would otherwise wait out the kernel's SYN retries. */
const CONNECT_TIMEOUT_MS = 3000;
/** Truncation rounds in a row that change nothing before the back-off grows. */
const IDLE_ROUNDS_BEFORE_BACKOFF = 3;
const MAX_BACKOFF_MS = 2000;

/** Options of {@linkcode ReplicaFetcherManager}. */
export interface ReplicaFetcherOptions {
  nodeId: number;
  clock: Clock;
  /** Back-off sleeps and request timeouts. */
  timers?: Timers;
  /** Carries the connections to the leaders. */
  net?: Network;
  /** The Kafka endpoint of a broker, from the metadata image. */
  endpointOf(brokerId: number): BrokerEndpoint | undefined;
}

interface FetchState {
  readonly partition: Partition;
  readonly leaderEpoch: number;
  truncating: boolean;
  /** Parked until the metadata changes (fenced epoch, not the leader any more). */
  parked: boolean;
  /** No request before this time (ms). */
  retryAtMs: number;
  /** OffsetForLeaderEpoch rounds in a row that left the log and epochs as they were. */
  idleRounds: number;
}

/** Owns the fetchers; the ReplicaManager tells it which partition follows whom. */
export class ReplicaFetcherManager {
  readonly #o: ReplicaFetcherOptions;
  readonly #fetchers = new Map<number, ReplicaFetcher>();
  /** Partition → the leader it fetches from. */
  readonly #leaderOf = new Map<Partition, number>();

  constructor(options: ReplicaFetcherOptions) {
    this.#o = options;
  }

  /** Fetch `partition` from `leaderId` in `leaderEpoch` (truncating first). */
  follow(partition: Partition, leaderId: number, leaderEpoch: number): void {
    const current = this.#leaderOf.get(partition);
    if (current !== undefined && current !== leaderId) this.remove(partition);
    let fetcher = this.#fetchers.get(leaderId);
    if (!fetcher) {
      fetcher = new ReplicaFetcher(leaderId, this.#o);
      this.#fetchers.set(leaderId, fetcher);
    }
    this.#leaderOf.set(partition, leaderId);
    fetcher.add(partition, leaderEpoch);
  }

  /** Stop fetching `partition`. */
  remove(partition: Partition): void {
    const leaderId = this.#leaderOf.get(partition);
    if (leaderId === undefined) return;
    this.#leaderOf.delete(partition);
    const fetcher = this.#fetchers.get(leaderId)!;
    fetcher.remove(partition);
    if (fetcher.size === 0) {
      this.#fetchers.delete(leaderId);
      void fetcher.close();
    }
  }

  /** Stops every fetcher, waiting for appends in progress. */
  async close(): Promise<void> {
    const all = [...this.#fetchers.values()];
    this.#fetchers.clear();
    this.#leaderOf.clear();
    await Promise.all(all.map((f) => f.close()));
  }
}

/** Fetches every partition this node follows on one leader broker. */
class ReplicaFetcher {
  readonly #leaderId: number;
  readonly #o: ReplicaFetcherOptions;
  readonly #timers: Timers;
  readonly #net: Network;
  readonly #states = new Map<Partition, FetchState>();
  /** Fetch responses (one in flight at a time) are read into reused buffers. */
  readonly #responseBuffers = new BufferPool(FETCH_MAX_BYTES * 2);
  #conn: KafkaConnection | null = null;
  #closed = false;
  #wake: (() => void) | null = null;
  readonly #loop: Promise<void>;

  constructor(leaderId: number, options: ReplicaFetcherOptions) {
    this.#leaderId = leaderId;
    this.#o = options;
    this.#timers = options.timers ?? systemTimers;
    this.#net = options.net ?? denoNet;
    this.#loop = this.#run();
  }

  get size(): number {
    return this.#states.size;
  }

  add(partition: Partition, leaderEpoch: number): void {
    const existing = this.#states.get(partition);
    if (existing && existing.leaderEpoch === leaderEpoch && !existing.parked) return;
    this.#states.set(partition, {
      partition,
      leaderEpoch,
      truncating: true,
      parked: false,
      retryAtMs: 0,
      idleRounds: 0,
    });
    this.#wake?.();
  }

  remove(partition: Partition): void {
    this.#states.delete(partition);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    void this.#conn?.close();
    await this.#loop;
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = this.#timers.setTimeout(resolve, ms);
      this.#wake = () => {
        this.#timers.clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = null;
  }

  async #connection(): Promise<KafkaConnection> {
    if (this.#conn) return this.#conn;
    const endpoint = this.#o.endpointOf(this.#leaderId);
    if (!endpoint) throw new Error(`Broker ${this.#leaderId} has no known address`);
    const conn = await KafkaConnection.connect(
      endpoint.host,
      endpoint.port,
      `tidelog-replica-${this.#o.nodeId}`,
      {
        net: this.#net,
        timeoutMs: CONNECT_TIMEOUT_MS,
        timers: this.#timers,
        responseBuffers: this.#responseBuffers,
      },
    );
    this.#conn = conn;
    void conn.closed.finally(() => {
      if (this.#conn === conn) this.#conn = null;
    });
    return conn;
  }

  /** Whether `s` is still what this fetcher should work on. */
  #current(s: FetchState): boolean {
    return this.#states.get(s.partition) === s && !s.partition.closed;
  }

  #ready(now: number): FetchState[] {
    return [...this.#states.values()].filter((s) =>
      !s.parked && s.retryAtMs <= now && !s.partition.closed
    );
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      const now = this.#o.clock.nowMs();
      const ready = this.#ready(now);
      if (ready.length === 0) {
        await this.#sleep(this.#states.size === 0 ? 1000 : BACKOFF_MS);
        continue;
      }
      try {
        const conn = await this.#connection();
        const truncating = ready.filter((s) => s.truncating);
        if (truncating.length > 0) await this.#truncate(conn, truncating);
        // Only a partition whose log is durable up to its end may report its end.
        const fetching = ready.filter((s) =>
          !s.truncating && this.#current(s) &&
          s.partition.log.durableEndOffset === s.partition.log.logEndOffset
        );
        if (fetching.length > 0) await this.#fetch(conn, fetching);
        else if (truncating.length === 0) await this.#sleep(BACKOFF_MS);
      } catch (err) {
        if (this.#closed) break;
        log.info("Replica fetch from broker {leader} failed: {error}", {
          leader: this.#leaderId,
          error: (err as Error).message,
        });
        void this.#conn?.close();
        this.#conn = null;
        await this.#sleep(BACKOFF_MS);
      }
    }
  }

  /** A partition's own failure: log it, back off, and leave the others alone. */
  #partitionFailed(s: FetchState, what: string, err: unknown): void {
    s.retryAtMs = this.#o.clock.nowMs() + BACKOFF_MS * 5;
    log.warn("{what} for {partition} from broker {leader} failed: {error}", {
      what,
      partition: s.partition.name,
      leader: this.#leaderId,
      error: err instanceof Error ? err.message : String(err),
    });
  }

  /** Where each partition's log diverges from the leader's: truncate there. */
  async #truncate(conn: KafkaConnection, states: FetchState[]): Promise<void> {
    const byTopic = groupByTopic(states);
    const response = await withTimeout(
      conn.request(ApiKey.OffsetForLeaderEpoch, 4, {
        replicaId: this.#o.nodeId,
        topics: [...byTopic].map(([topic, list]) => ({
          topic,
          partitions: list.map((s) => ({
            partition: s.partition.partitionId,
            currentLeaderEpoch: s.leaderEpoch,
            leaderEpoch: s.partition.leaderEpochCache.latestEpoch,
          })),
        })),
      }),
      REQUEST_TIMEOUT_MS,
      undefined,
      this.#timers,
    );
    for (const t of response.topics) {
      for (const r of t.partitions) {
        const s = byTopic.get(t.topic)?.find((x) => x.partition.partitionId === r.partition);
        if (!s || !this.#current(s)) continue;
        if (r.errorCode !== ErrorCode.NONE) {
          this.#onError(s, r.errorCode, "OffsetForLeaderEpoch");
          continue;
        }
        try {
          await this.#truncateOne(s, { epoch: r.leaderEpoch, endOffset: Number(r.endOffset) });
        } catch (err) {
          this.#partitionFailed(s, "Truncation", err);
        }
      }
    }
  }

  async #truncateOne(s: FetchState, answer: { epoch: number; endOffset: number }): Promise<void> {
    const p = s.partition;
    const before = `${p.log.logEndOffset}/${p.leaderEpochCache.latestEpoch}`;
    if (p.leaderEpochCache.latestEpoch === UNDEFINED_EPOCH) {
      // Nothing written under any epoch (an empty log): nothing can diverge.
      if (p.log.logEndOffset > p.log.logStartOffset) {
        await p.truncateTo(Math.max(p.highWatermark, p.log.logStartOffset));
      }
      await this.#truncated(s);
      return;
    }
    const point = followerTruncationPoint({
      followerEntries: p.leaderEpochCache.entries,
      followerLeo: p.log.logEndOffset,
      followerHw: p.highWatermark,
      leaderAnswer: answer,
    });
    if (point.offset < p.log.logEndOffset) {
      log.info("Truncating {partition} from {leo} to {offset} (leader {leader} epoch {epoch})", {
        partition: p.name,
        leo: p.log.logEndOffset,
        offset: point.offset,
        leader: this.#leaderId,
        epoch: s.leaderEpoch,
      });
    }
    // Also at or past the log end: the epochs from there on go (see Partition.truncateTo).
    await p.truncateTo(point.offset);
    if (point.completed) {
      await this.#truncated(s);
      return;
    }
    // Not done: ask again with the (now older) latest epoch. A round that changed
    // nothing would ask the same question; back off so it cannot spin.
    if (`${p.log.logEndOffset}/${p.leaderEpochCache.latestEpoch}` === before) {
      s.idleRounds++;
      if (s.idleRounds >= IDLE_ROUNDS_BEFORE_BACKOFF) {
        const wait = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (s.idleRounds - 2));
        s.retryAtMs = this.#o.clock.nowMs() + wait;
        log.warn(
          "{partition}: OffsetForLeaderEpoch keeps answering epoch {epoch} at {offset}; retrying in {ms} ms",
          { partition: p.name, epoch: answer.epoch, offset: answer.endOffset, ms: wait },
        );
      }
    } else {
      s.idleRounds = 0;
    }
  }

  /**
   * Truncation is over: fetching may start, once everything this replica holds is
   * fsynced (a former leader may still have appends in flight), since its fetch offset
   * tells the leader what it has durably.
   */
  async #truncated(s: FetchState): Promise<void> {
    const p = s.partition;
    if (p.log.logEndOffset > p.log.logStartOffset) await p.waitLocalDurable(p.log.logEndOffset - 1);
    s.truncating = false;
    s.idleRounds = 0;
  }

  /** One Fetch round for `states`; appends what comes back, durably. */
  async #fetch(conn: KafkaConnection, states: FetchState[]): Promise<void> {
    const byTopic = groupByTopic(states);
    const { response, release } = await withTimeout(
      conn.requestLoaned(ApiKey.Fetch, 11, {
        replicaId: this.#o.nodeId,
        maxWaitMs: FETCH_MAX_WAIT_MS,
        minBytes: 1,
        maxBytes: FETCH_MAX_BYTES,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [...byTopic].map(([topic, list]) => ({
          topic,
          partitions: list.map((s) => ({
            partition: s.partition.partitionId,
            currentLeaderEpoch: s.leaderEpoch,
            fetchOffset: BigInt(s.partition.log.durableEndOffset),
            logStartOffset: BigInt(s.partition.log.logStartOffset),
            partitionMaxBytes: PARTITION_MAX_BYTES,
          })),
        })),
        forgottenTopicsData: [],
        rackId: "",
      }),
      FETCH_MAX_WAIT_MS + REQUEST_TIMEOUT_MS,
      undefined,
      this.#timers,
    );
    if (response.errorCode !== ErrorCode.NONE) {
      release();
      throw new Error(`Fetch failed with error code ${response.errorCode}`);
    }
    const appended: { s: FetchState; hw: number; leaderStart: number; durable: Promise<void> }[] =
      [];
    const restarts: { s: FetchState; offset: number }[] = [];
    for (const t of response.responses) {
      for (const r of t.partitions) {
        const s = byTopic.get(t.topic)?.find((x) => x.partition.partitionId === r.partitionIndex);
        if (!s || !this.#current(s)) continue;
        if (r.errorCode !== ErrorCode.NONE) {
          const leaderStart = Number(r.logStartOffset);
          if (
            r.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE &&
            leaderStart > s.partition.log.logEndOffset
          ) {
            // The leader deleted (retention) what we are missing: start at its log start.
            restarts.push({ s, offset: leaderStart });
            continue;
          }
          this.#onError(s, r.errorCode, "Fetch");
          continue;
        }
        try {
          const durable = this.#append(s, r.records ?? new Uint8Array(0));
          if (durable !== null) {
            appended.push({
              s,
              hw: Number(r.highWatermark),
              leaderStart: Number(r.logStartOffset),
              durable,
            });
          }
        } catch (err) {
          this.#partitionFailed(s, "Append", err);
        }
      }
    }
    // Every batch is in the log file now (appends are synchronous writes): the frame's
    // memory may take the next response.
    release();
    // Report nothing before what was appended is durable (or has failed).
    const settled = await Promise.allSettled(appended.map((a) => a.durable));
    const starts: { s: FetchState; offset: number }[] = [];
    settled.forEach((result, i) => {
      const { s, hw, leaderStart } = appended[i]!;
      if (result.status === "rejected") this.#partitionFailed(s, "fsync", result.reason);
      else if (this.#current(s)) {
        s.partition.setFollowerHighWatermark(hw);
        // The leader moved its log start (DeleteRecords, retention): follow it, never past
        // what this replica knows is committed (Kafka's maybeIncrementLogStartOffset).
        const offset = Math.min(leaderStart, s.partition.highWatermark);
        if (offset > s.partition.log.logStartOffset) starts.push({ s, offset });
      }
    });
    for (const { s, offset } of starts) {
      if (!this.#current(s)) continue;
      try {
        await s.partition.log.advanceLogStartOffset(offset);
        s.partition.leaderEpochCache.truncateFromStart(s.partition.log.logStartOffset);
      } catch (err) {
        this.#partitionFailed(s, "Log start advance", err);
      }
    }
    for (const { s, offset } of restarts) {
      if (!this.#current(s)) continue;
      log.warn(
        "{partition}: our log end {leo} is below leader {leader}'s log start {start}; restarting the log there",
        {
          partition: s.partition.name,
          leo: s.partition.log.logEndOffset,
          leader: this.#leaderId,
          start: offset,
        },
      );
      try {
        await s.partition.truncateFullyAndStartAt(offset);
      } catch (err) {
        this.#partitionFailed(s, "Log restart", err);
      }
    }
  }

  /**
   * Appends the batches of one partition's fetch answer that extend the log; resolves once
   * they are durable. Null when the answer must not be taken in (the logs diverge: truncate
   * again).
   */
  #append(s: FetchState, records: Uint8Array): Promise<void> | null {
    const p = s.partition;
    if (records.length === 0) return Promise.resolve();
    const batches = splitBatches(records);
    // As the leader's log stores them: compaction may have thinned or emptied batches.
    const headers: BatchHeader[] = batches.map((b) => validateBatch(b, "stored"));
    // The leader sends whole batches from the one holding our log end (or, compacted, the
    // first after it): skip any we have.
    const leo = p.log.logEndOffset;
    if (headers.some((h) => h.baseOffset < leo && lastOffsetOf(h) >= leo)) {
      // Our log end falls inside a leader batch: the logs diverge; truncate again.
      s.truncating = true;
      return null;
    }
    const keep = headers.map((h) => h.baseOffset >= leo);
    const newBatches = batches.filter((_, i) => keep[i]);
    const newHeaders = headers.filter((_, i) => keep[i]);
    if (newBatches.length === 0) return Promise.resolve();
    return p.waitLocalDurable(p.appendAsFollower(newBatches, newHeaders));
  }

  #onError(s: FetchState, code: number, api: string): void {
    const p = s.partition;
    switch (code) {
      case ErrorCode.UNKNOWN_LEADER_EPOCH:
      case ErrorCode.NOT_LEADER_OR_FOLLOWER:
        // The leader has not applied the metadata we have yet (or we are behind): retry.
        s.retryAtMs = this.#o.clock.nowMs() + BACKOFF_MS;
        break;
      case ErrorCode.OFFSET_OUT_OF_RANGE:
        s.truncating = true;
        s.retryAtMs = this.#o.clock.nowMs() + BACKOFF_MS;
        break;
      case ErrorCode.FENCED_LEADER_EPOCH:
        s.parked = true;
        break;
      default:
        s.retryAtMs = this.#o.clock.nowMs() + BACKOFF_MS * 5;
    }
    log.info("{api} of {partition} from broker {leader} (epoch {epoch}): error code {code}", {
      api,
      partition: p.name,
      leader: this.#leaderId,
      epoch: s.leaderEpoch,
      code,
    });
  }
}

function groupByTopic(states: FetchState[]): Map<string, FetchState[]> {
  const out = new Map<string, FetchState[]>();
  for (const s of states) {
    const list = out.get(s.partition.topic);
    if (list) list.push(s);
    else out.set(s.partition.topic, [s]);
  }
  return out;
}
