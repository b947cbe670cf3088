/**
 * The partitions this node hosts: opens their logs as the metadata image assigns them,
 * removes them when topics are deleted, applies topic configs to their logs, and runs the
 * leader-side append path (validate batches, check idempotent producers, assign offsets,
 * write).
 */
import { join } from "node:path";
import {
  DEFAULT_LOG_CONFIG,
  type FlushPolicy,
  KafkaStorageError,
  type LogConfig,
  PartitionLog,
} from "../log/mod.ts";
import type {
  AlterPartitionRequest,
  MetadataImage,
  PartitionState,
  TopicImage,
} from "../metadata/mod.ts";
import {
  type BrokerConfigLayers,
  NO_BROKER_CONFIGS,
  topicConfigNumber,
  topicConfigValue,
} from "../metadata/mod.ts";
import { ErrorCode } from "../protocol/error_codes.ts";
import { batchHasNullKey, encodeControlBatch } from "../protocol/record_codec.ts";
import {
  type BatchHeader,
  isControl,
  readBatchHeader,
  splitBatches,
  validateBatch,
} from "../protocol/record_batch.ts";
import { type AppendOrigin, PartitionProducerState, type TxnMarker } from "../producer/mod.ts";
import { denoFs, ensureDir, type FileSystem, syncDir } from "../runtime/fs.ts";
import type { Network } from "../runtime/net.ts";
import { systemTimers, type TimerHandle, type Timers } from "../runtime/timers.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { forEachConcurrently } from "../util/concurrency.ts";
import { TidelogError } from "../util/errors.ts";
import { getLogger } from "../util/log.ts";
import {
  type CleanerStats,
  type CleanerTarget,
  type CleanResult,
  LogCleaner,
} from "../log/cleaner/mod.ts";
import { LeaderEpochFileCache } from "./leader_epoch_file_cache.ts";
import { Partition, partitionName } from "./partition.ts";
import type { AnsweredState, IsrAnswer, IsrProposal } from "./partition_core.ts";
import { ReplicaFetcherManager } from "./replica_fetcher.ts";

const log = getLogger(["tidelog", "replication"]);
/** Partitions opened at once when an image brings new ones (start-up, CreateTopics). */
const OPEN_CONCURRENCY = 32;
/** How often a long opening of partitions logs its progress. */
const PROGRESS_INTERVAL_MS = 2000;
/** File descriptors kept free for connections, rolled segments and checkpoints. */
const DESCRIPTOR_RESERVE = 512;

/** Settings that apply to every partition on this node. */
export interface ReplicaManagerOptions {
  /** Directory holding one folder per partition (`<topic>-<partition>`). */
  topicsDir: string;
  nodeId: number;
  flush: FlushPolicy;
  clock?: Clock;
  /** The ISR check, retries, log flush timers and the fetchers' back-offs and timeouts. */
  timers?: Timers;
  /** Holds `topicsDir` and every partition's files. */
  fs?: FileSystem;
  /** Carries the replica fetchers' connections to the leaders. */
  net?: Network;
  /** Kafka `replica.lag.time.max.ms`. @default 5000 */
  replicaLagTimeMaxMs?: number;
  /**
   * Asks the controller for an ISR change of a partition this node leads (AlterPartition);
   * resolves with the controller's answer, rejects when none came (timeout, no controller:
   * the outcome is unknown and the request is sent again). Without it (tests of one node)
   * the ISR never changes.
   */
  alterIsr?: (req: IsrChange) => Promise<IsrChangeAnswer>;
  /** The node's static broker defaults of topic configs (its `--config` file), by broker key. */
  staticBrokerConfigs?: Readonly<Record<string, string>>;
  /** Told how long each partition log's fsync round took, in ms (metrics). */
  onLogSyncMs?: (ms: number) => void;
  /**
   * Called once when a partition log fails (an fsync or write error): the node must stop,
   * as Kafka halts a broker whose only log directory failed, so the controller moves its
   * leaderships (its connections close) instead of clients getting KAFKA_STORAGE_ERROR
   * until someone restarts it.
   */
  onStorageFailure?: (err: Error) => void;
  /**
   * Lead nothing, and remove no partition folder the image does not know, until
   * {@linkcode ReplicaManager.startLeading}: a node restarted into a cluster holds a stale
   * image until it has caught up with the metadata log.
   */
  holdLeadership?: boolean;
  /** The log cleaner's settings (compacted topics); Kafka's defaults when absent. */
  logCleaner?: {
    dedupeBufferBytes?: number;
    ioMaxBytesPerSecond?: number;
    backoffMs?: number;
  };
}

/** An ISR change proposed by a partition leader (AlterPartition without the sender). */
export type IsrChange = Pick<
  AlterPartitionRequest,
  "topicId" | "partitionId" | "leaderEpoch" | "partitionEpoch" | "newIsr" | "leaderRecoveryState"
>;

/** The controller's answer to an {@linkcode IsrChange}. */
export interface IsrChangeAnswer {
  errorCode: number;
  /** The partition's state after the change (on success). */
  partition?: AnsweredState;
}

/** What a successful leader append did. */
export interface LeaderAppendResult {
  baseOffset: number;
  lastOffset: number;
  /** -1 unless the topic uses LogAppendTime. */
  logAppendTimeMs: number;
  /**
   * True if the batches retried an idempotent append already in the log: nothing was
   * written and the offsets are the original ones (KIP-98).
   */
  duplicate: boolean;
}

/** Derives a partition's log settings from its topic's configs. */
export function logConfigFor(
  topic: TopicImage,
  flush: FlushPolicy,
  brokers: BrokerConfigLayers = NO_BROKER_CONFIGS,
): LogConfig {
  const n = (name: string) => topicConfigNumber(topic.configs, name, brokers);
  const policy = topicConfigValue(topic.configs, "cleanup.policy", brokers).split(",")
    .map((p) => p.trim());
  return {
    ...DEFAULT_LOG_CONFIG,
    segmentBytes: n("segment.bytes"),
    segmentMs: n("segment.ms"),
    indexIntervalBytes: n("index.interval.bytes"),
    retentionMs: n("retention.ms"),
    retentionBytes: n("retention.bytes"),
    flush,
    deletePolicy: policy.includes("delete"),
    compact: policy.includes("compact"),
    minCleanableDirtyRatio: n("min.cleanable.dirty.ratio"),
    minCompactionLagMs: n("min.compaction.lag.ms"),
    maxCompactionLagMs: Math.min(n("max.compaction.lag.ms"), Number.MAX_SAFE_INTEGER),
    deleteRetentionMs: n("delete.retention.ms"),
  };
}

/** Partitions hosted here, keyed by "topic-partition". */
export class ReplicaManager {
  readonly #options: ReplicaManagerOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #fs: FileSystem;
  readonly #partitions = new Map<string, Partition>();
  #image: MetadataImage | null = null;
  readonly #fetchers: ReplicaFetcherManager;
  readonly #isrTimer: TimerHandle;
  readonly #cleaner: LogCleaner;
  #closed = false;
  #leadershipHeld: boolean;
  /** This broker has lost the controller quorum: it leads nothing until it is back. */
  #quorumLost = false;
  #orphansRemoved = false;
  #applying: Promise<void> = Promise.resolve();

  constructor(options: ReplicaManagerOptions) {
    this.#options = options;
    this.#leadershipHeld = options.holdLeadership ?? false;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#fs = options.fs ?? denoFs;
    this.#fetchers = new ReplicaFetcherManager({
      nodeId: options.nodeId,
      clock: this.#clock,
      timers: this.#timers,
      net: options.net,
      endpointOf: (id) => this.#image?.brokers.get(id)?.endpoints[0],
    });
    this.#isrTimer = this.#timers.setInterval(
      () => this.#checkIsrs(),
      Math.min(200, Math.max(10, Math.floor(this.#lagTimeMs / 2))),
    );
    this.#cleaner = new LogCleaner({
      ...options.logCleaner,
      clock: this.#clock,
      timers: this.#timers,
      targets: () => this.#cleanerTargets(),
    });
    this.#cleaner.start();
  }

  /** The compacted partitions' logs, for the cleaner: each cleaned below its HW. */
  *#cleanerTargets(): Iterable<CleanerTarget> {
    for (const p of this.#partitions.values()) {
      if (p.closed || !p.log.config.compact) continue;
      yield cleanerTarget(p);
    }
  }

  /** The cleaner's figures of a compacted partition (metrics); null for others. */
  cleanerStats(partition: Partition): CleanerStats | null {
    return partition.log.config.compact ? this.#cleaner.stats(cleanerTarget(partition)) : null;
  }

  /** Cleans a compacted partition now, whatever its dirty ratio (tests, benchmarks). */
  cleanNow(partition: Partition): Promise<CleanResult> {
    return this.#cleaner.cleanNow(cleanerTarget(partition));
  }

  get #lagTimeMs(): number {
    return this.#options.replicaLagTimeMaxMs ?? 5000;
  }

  /**
   * Leader: a follower fetched `partition` at `fetchOffset` (its durable end). Moves the
   * high watermark and proposes an ISR expansion if the follower has caught up.
   */
  onFollowerFetch(
    partition: Partition,
    replicaId: number,
    fetchOffset: number,
    logStartOffset = -1,
  ): void {
    partition.onFollowerFetch(replicaId, fetchOffset, logStartOffset);
  }

  /**
   * Moves the log start of a partition this node leads to `offset` (DeleteRecords): the
   * segments wholly below it are deleted and followers follow through Fetch. The caller
   * checked `offset` against the high watermark.
   */
  async deleteRecordsBefore(partition: Partition, offset: number): Promise<void> {
    if (offset <= partition.log.logStartOffset) return;
    await partition.log.advanceLogStartOffset(offset);
    if (!partition.closed) {
      partition.leaderEpochCache.truncateFromStart(partition.log.logStartOffset);
    }
    log.info("DeleteRecords moved the log start of {partition} to {start}", {
      partition: partition.name,
      start: partition.log.logStartOffset,
    });
  }

  #checkIsrs(): void {
    if (this.#closed) return;
    for (const p of this.#partitions.values()) if (p.isLeader) p.tick();
  }

  /** ISR changes the controller accepted, led here (Kafka's IsrShrinksPerSec/IsrExpandsPerSec). */
  readonly isrChanges = { shrinks: 0, expands: 0 };

  /** Sends a partition's ISR proposal and hands the answer back to it. */
  #propose(partition: Partition, proposal: IsrProposal): void {
    const alter = this.#options.alterIsr;
    if (!alter || this.#closed) return;
    const before = partition.isr.length;
    log.info("{partition}: asking the controller to change the ISR {from} → {to}{recovered}", {
      partition: partition.name,
      from: partition.isr.join(","),
      to: proposal.newIsr.join(","),
      recovered: partition.leaderRecoveryState === 1 ? " (recovered from an unclean election)" : "",
    });
    alter({
      topicId: partition.topicId,
      partitionId: partition.partitionId,
      leaderEpoch: proposal.leaderEpoch,
      partitionEpoch: proposal.partitionEpoch,
      newIsr: proposal.newIsr,
      leaderRecoveryState: proposal.leaderRecoveryState,
    }).then(
      (a) => {
        const answer: IsrAnswer = a.partition
          ? { kind: "answered", errorCode: a.errorCode, state: a.partition }
          : { kind: "answered", errorCode: a.errorCode };
        if (a.errorCode === ErrorCode.NONE) {
          if (proposal.newIsr.length < before) this.isrChanges.shrinks++;
          else if (proposal.newIsr.length > before) this.isrChanges.expands++;
        }
        partition.answered(proposal, answer);
      },
      (err) => partition.answered(proposal, { kind: "unknown", reason: String(err) }),
    );
  }

  /**
   * This broker lost (true) or regained (false) contact with the controller quorum for
   * longer than its session: while lost it leads nothing (clients get
   * NOT_LEADER_OR_FOLLOWER and look elsewhere; the controller has fenced it or will), and
   * it takes up what the image gives once contact is back.
   */
  async setQuorumLost(lost: boolean): Promise<void> {
    if (this.#quorumLost === lost) return;
    this.#quorumLost = lost;
    log.warn(
      lost
        ? "Lost the controller quorum: leading nothing until it is back"
        : "Controller quorum reachable again",
    );
    await this.#applying;
    if (this.#image) await this.applyImage(this.#image);
  }

  /** Whether leadership is suspended (not caught up yet, or the quorum is lost). */
  get leadershipSuspended(): boolean {
    return this.#leadershipHeld || this.#quorumLost;
  }

  /** The partition, if this node hosts it. */
  getPartition(topic: string, partitionId: number): Partition | undefined {
    return this.#partitions.get(partitionName(topic, partitionId));
  }

  /** Every hosted partition. */
  partitions(): IterableIterator<Partition> {
    return this.#partitions.values();
  }

  /**
   * Brings the hosted partitions in line with `image`: opens logs for new partitions
   * assigned here, closes and deletes those of removed topics, and pushes config changes.
   * Also removes leftover partition folders that no topic owns (a crash mid-delete).
   */
  applyImage(image: MetadataImage): Promise<void> {
    // One at a time: start-up, startLeading and the metadata listener may overlap.
    const run = this.#applying.then(() => this.#applyImage(image)).catch((err) => {
      // Creating, opening or deleting a partition's files failed: as a failed log dir,
      // the node stops (Kafka halts); a half-applied image is not served.
      if (!this.#closed) this.#options.onStorageFailure?.(err as Error);
      throw err;
    });
    this.#applying = run.catch(() => {});
    return run;
  }

  async #applyImage(image: MetadataImage): Promise<void> {
    const first = this.#image === null;
    this.#image = image;
    const layers = image.brokerConfigLayers(
      this.#options.nodeId,
      this.#options.staticBrokerConfigs,
    );
    await ensureDir(this.#fs, this.#options.topicsDir);
    const wanted = new Map<string, { topic: TopicImage; partitionId: number }>();
    for (const topic of image.topicsById.values()) {
      topic.partitions.forEach((p, partitionId) => {
        if (p.replicas.includes(this.#options.nodeId)) {
          wanted.set(partitionName(topic.name, partitionId), { topic, partitionId });
        }
      });
    }
    for (const [name, partition] of this.#partitions) {
      const want = wanted.get(name);
      if (!want || want.topic.topicId !== partition.topicId) {
        this.#partitions.delete(name);
        this.#fetchers.remove(partition);
        partition.markClosed();
        await partition.producerState.abandon();
        await partition.leaderEpochCache.close();
        await partition.log.delete();
        log.info("Deleted partition {partition}", { partition: name });
      }
    }
    const created: [string, { topic: TopicImage; partitionId: number }][] = [];
    const kept: [Partition, { topic: TopicImage; partitionId: number }][] = [];
    for (const [name, want] of wanted) {
      const existing = this.#partitions.get(name);
      if (existing) kept.push([existing, want]);
      else created.push([name, want]);
    }
    this.#checkDescriptors(created.length);
    // Partitions are independent: taking up roles (a new leader epoch is fsynced) and
    // opening logs in parallel overlaps their file system round trips and fsyncs (a
    // start-up with 10,000 partitions was 67% idle when they went one by one).
    await forEachConcurrently(
      kept,
      OPEN_CONCURRENCY,
      async ([existing, { topic, partitionId }]) => {
        existing.log.updateConfig(logConfigFor(topic, this.#options.flush, layers));
        await this.#applyRole(existing, topic.partitions[partitionId]!);
      },
    );
    // Long start-ups (many partitions, logs to recover) say how far they are.
    let opened = 0;
    let openedBytes = 0;
    const openStarted = this.#clock.nowMs();
    let lastProgress = openStarted;
    const progress = () => {
      const now = this.#clock.nowMs();
      if (now - lastProgress < PROGRESS_INTERVAL_MS) return;
      lastProgress = now;
      log.info("Opening partitions: {done} of {total} ({mib} MiB) after {seconds} s", {
        done: opened,
        total: created.length,
        mib: Math.round(openedBytes / 1048576),
        seconds: Math.round((now - openStarted) / 1000),
      });
    };
    await forEachConcurrently(created, OPEN_CONCURRENCY, async ([name, { topic, partitionId }]) => {
      const state = topic.partitions[partitionId]!;
      const dir = join(this.#options.topicsDir, name);
      await this.#claimDirectory(dir, topic.topicId);
      const partitionLog = await PartitionLog.open(
        dir,
        logConfigFor(topic, this.#options.flush, layers),
        {
          clock: this.#clock,
          timers: this.#timers,
          fs: this.#fs,
          name,
        },
      );
      partitionLog.onSyncMs = this.#options.onLogSyncMs ?? null;
      const producerState = await PartitionProducerState.load(partitionLog, {
        clock: this.#clock,
        fs: this.#fs,
        timers: this.#timers,
      });
      const leaderEpochCache = await LeaderEpochFileCache.open(partitionLog, { fs: this.#fs });
      const partition = new Partition(
        {
          topic: topic.name,
          topicId: topic.topicId,
          partitionId,
          log: partitionLog,
          producerState,
          leaderEpochCache,
          leaderEpoch: state.leaderEpoch,
        },
        {
          nodeId: this.#options.nodeId,
          clock: this.#clock,
          timers: this.#timers,
          fs: this.#fs,
          replicaLagTimeMaxMs: this.#lagTimeMs,
        },
      );
      partition.attach({ propose: (p, proposal) => this.#propose(p, proposal) });
      partitionLog.onFailure((err) => this.#options.onStorageFailure?.(err));
      this.#partitions.set(name, partition);
      await this.#applyRole(partition, state);
      opened++;
      openedBytes += partitionLog.sizeInBytes;
      progress();
      if (!first) log.info("Created partition {partition}", { partition: name });
    });
    if (created.length > 0 && this.#clock.nowMs() - openStarted >= PROGRESS_INTERVAL_MS) {
      log.info("Opened {total} partitions ({mib} MiB) in {seconds} s", {
        total: created.length,
        mib: Math.round(openedBytes / 1048576),
        seconds: Math.round((this.#clock.nowMs() - openStarted) / 1000),
      });
    }
    // Folders no topic owns are removed once, and only from an image this node may trust:
    // a restarted node's first image is its own recovered one, which can predate topics
    // it holds data for (its Raft commit index is not fsynced on every change), and
    // deleting their folders would destroy replicas the cluster counts on.
    if (!this.#orphansRemoved && !this.#leadershipHeld) {
      this.#orphansRemoved = true;
      await this.#removeOrphans(new Set(wanted.keys()));
    }
  }

  /**
   * Refuses to open `count` more partitions when their active segments would not fit in
   * the process's file descriptor limit (with room for connections and segment rolls):
   * a clear storage failure instead of running out part-way.
   */
  #checkDescriptors(count: number): void {
    if (count === 0) return;
    const d = this.#fs.descriptors?.();
    if (!d) return;
    const needed = d.open + count + DESCRIPTOR_RESERVE;
    if (needed > d.limit) {
      throw new KafkaStorageError(
        `Cannot open ${count} more partitions: with ${d.open} file descriptors open they need about ${needed}, over the limit of ${d.limit} (raise it with ulimit -n)`,
      );
    }
  }

  /** Ends {@linkcode ReplicaManagerOptions.holdLeadership}: takes the roles the image gives. */
  async startLeading(): Promise<void> {
    if (!this.#leadershipHeld) return;
    this.#leadershipHeld = false;
    // The latest image, whichever call applies it last.
    await this.#applying;
    if (this.#image) await this.applyImage(this.#image);
  }

  /** Leader, follower (fetching from the leader) or neither, as `state` says. */
  async #applyRole(partition: Partition, state: PartitionState): Promise<void> {
    const image = this.#image!;
    const hold = this.leadershipSuspended;
    const leads = state.leader === this.#options.nodeId && !hold;
    if (leads) {
      this.#fetchers.remove(partition);
      // A truncation the fetcher started must finish before this log takes appends.
      await partition.whenTruncated();
    }
    const change = partition.applyImage(state, {
      holdLeadership: hold,
      brokerEpoch: (id) => image.brokers.get(id)?.brokerEpoch ?? -1,
      eligible: (id) => image.isActive(id),
    });
    if (change === undefined) return;
    if (change.role === "leader") {
      log.info("Leading {partition} in epoch {epoch} (ISR {isr})", {
        partition: partition.name,
        epoch: change.leaderEpoch,
        isr: partition.isr.join(","),
      });
      await partition.leaderEpochCache.flush();
    } else if (change.role === "follower") {
      log.debug("Following {leader} for {partition} in epoch {epoch}", {
        leader: change.leader,
        partition: partition.name,
        epoch: change.leaderEpoch,
      });
      this.#fetchers.follow(partition, change.leader, change.leaderEpoch);
    } else {
      this.#fetchers.remove(partition);
    }
  }

  /**
   * Makes `dir` belong to topic `topicId`: a folder left by an earlier topic of the same
   * name (deleted while this node was down) is removed first.
   */
  async #claimDirectory(dir: string, topicId: string): Promise<void> {
    const marker = join(dir, "partition.json");
    try {
      const existing = JSON.parse(await this.#fs.readTextFile(marker)) as { topicId?: string };
      if (existing.topicId === topicId) return;
      log.warn("Removing {dir}: it belongs to an earlier topic {old}", {
        dir,
        old: existing.topicId,
      });
      await this.#fs.remove(dir, { recursive: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) && !(err instanceof SyntaxError)) throw err;
    }
    await ensureDir(this.#fs, dir);
    const tmp = `${marker}.tmp`;
    await this.#fs.writeTextFile(tmp, JSON.stringify({ topicId }));
    using f = await this.#fs.open(tmp, { read: true, write: true });
    await f.sync();
    await this.#fs.rename(tmp, marker);
    await syncDir(this.#fs, dir);
  }

  async #removeOrphans(keep: Set<string>): Promise<void> {
    for await (const entry of this.#fs.readDir(this.#options.topicsDir)) {
      if (!entry.isDirectory || keep.has(entry.name)) continue;
      log.warn("Removing partition folder {dir}: no topic owns it", { dir: entry.name });
      await this.#fs.remove(join(this.#options.topicsDir, entry.name), { recursive: true });
    }
  }

  /**
   * Validates and appends a produce request's records for `partition` (this node leads
   * it). Every batch is checked before any is written, so a bad batch writes nothing.
   * Idempotent batches are checked against the partition's producer state: a retry of
   * one of a producer's last 5 batches returns the original offsets without appending.
   * Throws {@linkcode TidelogError}: CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_RECORD,
   * OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH.
   */
  appendAsLeader(
    partition: Partition,
    records: Uint8Array | null,
    origin: AppendOrigin = "client",
  ): LeaderAppendResult {
    if (!partition.isLeader) {
      throw new TidelogError(
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        `This node is not the leader of ${partition.name}`,
      );
    }
    if (records === null || records.length === 0) {
      throw new TidelogError(
        ErrorCode.CORRUPT_MESSAGE,
        `Produce to ${partition.name} carried no record batch`,
      );
    }
    const topic = this.#image?.topicsById.get(partition.topicId);
    if (!topic) {
      throw new TidelogError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `Unknown topic of ${partition.name}`,
      );
    }
    const layers = this.#image?.brokerConfigLayers(
      this.#options.nodeId,
      this.#options.staticBrokerConfigs,
    );
    const maxMessageBytes = topicConfigNumber(topic.configs, "max.message.bytes", layers);
    const batches = splitBatches(records);
    const headers: BatchHeader[] = [];
    const compacted = topicConfigValue(topic.configs, "cleanup.policy", layers).includes("compact");
    for (const batch of batches) {
      if (batch.length > maxMessageBytes) {
        throw new TidelogError(
          ErrorCode.MESSAGE_TOO_LARGE,
          `Batch of ${batch.length} bytes for ${partition.name} exceeds max.message.bytes ${maxMessageBytes}`,
        );
      }
      const header = validateBatch(batch);
      headers.push(header);
      if (compacted && nullKeyIn(batch, partition.name)) {
        throw new TidelogError(
          ErrorCode.INVALID_RECORD,
          `Compacted topic cannot accept message without key in topic partition ${partition.name}.`,
        );
      }
      if (isControl(header)) {
        // Markers come from transaction coordinators (WriteTxnMarkers), never from clients.
        throw new TidelogError(
          ErrorCode.INVALID_RECORD,
          `Client produce requests may not carry control records (${partition.name})`,
        );
      }
    }
    const logAppendTime =
      topicConfigValue(topic.configs, "message.timestamp.type", layers) === "LogAppendTime";
    const duplicate = partition.producerState.check(headers, origin);
    if (duplicate !== null) {
      log.debug("Duplicate batch of producer {producerId} for {partition} at offset {offset}", {
        producerId: duplicate.producerId,
        partition: partition.name,
        offset: duplicate.firstOffset,
      });
      return {
        baseOffset: duplicate.firstOffset,
        lastOffset: duplicate.lastOffset,
        logAppendTimeMs: logAppendTime ? duplicate.timestamp : -1,
        duplicate: true,
      };
    }
    // No await from the check to onAppended: appends of other requests cannot interleave.
    // The epoch's start is recorded before its first batch (the file follows in the
    // background; LeaderEpochFileCache.open recovers it from the batches after a crash).
    partition.maybeAssignLeaderEpoch();
    const result = partition.log.append(batches, {
      leaderEpoch: partition.leaderEpoch,
      ...(logAppendTime ? { logAppendTimeMs: this.#clock.nowMs() } : {}),
    });
    partition.producerState.onAppended(headers, batches, result.baseOffset, {
      logAppendTimeMs: result.logAppendTimeMs,
      bytes: records.length,
    });
    partition.afterAppend(result.lastOffset);
    return { ...result, duplicate: false };
  }

  /**
   * Leader: appends a transaction marker (a control batch) for `marker`'s producer, as
   * WriteTxnMarkers asks; returns its offset. The caller waits for the high watermark
   * (markers are written with acks=all, as Kafka does).
   *
   * @throws {TidelogError} NOT_LEADER_OR_FOLLOWER; INVALID_PRODUCER_EPOCH or
   * TRANSACTION_COORDINATOR_FENCED for a marker from an older producer or coordinator epoch
   */
  appendMarkerAsLeader(partition: Partition, marker: TxnMarker): number {
    if (!partition.isLeader || partition.closed) {
      throw new TidelogError(
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        `This node is not the leader of ${partition.name}`,
      );
    }
    partition.producerState.state.checkMarker(marker);
    const batch = encodeControlBatch(marker, this.#clock.nowMs());
    const header = readBatchHeader(batch, 0);
    partition.maybeAssignLeaderEpoch();
    const result = partition.log.append([batch], { leaderEpoch: partition.leaderEpoch });
    partition.producerState.onAppended([header], [batch], result.baseOffset, {
      logAppendTimeMs: -1,
      bytes: batch.length,
    });
    partition.afterAppend(result.lastOffset);
    return result.lastOffset;
  }

  /** Deletes segments past retention in every partition. */
  async applyRetention(): Promise<void> {
    const now = this.#clock.nowMs();
    for (const partition of this.#partitions.values()) {
      // Never at or above the high watermark: that data may be on no other replica yet.
      const deleted = await partition.log.applyRetention(now, {
        maxOffset: partition.highWatermark,
      });
      if (deleted > 0) {
        if (!partition.closed) {
          partition.leaderEpochCache.truncateFromStart(partition.log.logStartOffset);
        }
        log.info("Retention deleted {count} segment(s) of {partition}; log start is now {start}", {
          count: deleted,
          partition: partition.name,
          start: partition.log.logStartOffset,
        });
      }
    }
  }

  /** Closes every partition log (fsyncing what is pending). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timers.clearInterval(this.#isrTimer);
    await this.#cleaner.close();
    await this.#fetchers.close();
    for (const partition of this.#partitions.values()) {
      partition.markClosed();
      await partition.producerState.close();
      await partition.leaderEpochCache.close();
      await partition.log.close();
    }
    this.#partitions.clear();
  }
}

function cleanerTarget(p: Partition): CleanerTarget {
  return {
    name: p.name,
    log: p.log,
    // Nothing a transaction still open (or whose marker is not replicated) may be
    // cleaned: whether its records stay depends on its outcome.
    maxOffset: p.lastStableOffset,
    abortedTransactions: () => p.producerState.state.allAborted(),
    producerLastOffsets: () =>
      new Set(
        p.producerState.state.entries().flatMap((e) => {
          const last = e.batches.at(-1);
          return last ? [last.lastOffset] : [];
        }),
      ),
  };
}

/** Whether a batch for a compacted partition holds a record without a key. */
function nullKeyIn(batch: Uint8Array, partition: string): boolean {
  try {
    return batchHasNullKey(batch);
  } catch (err) {
    throw new TidelogError(
      ErrorCode.CORRUPT_MESSAGE,
      `Cannot read the records of a batch for ${partition}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
