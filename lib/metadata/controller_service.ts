/**
 * The controller's I/O shell (DESIGN §7): runs on every node, acts only while this node
 * is the Raft leader. It answers broker registrations, heartbeats, AlterPartition and
 * producer-id requests by running the pure decisions of `cluster_controller.ts` inside
 * `RaftMetadataStore.propose` (so each plan sees the latest committed image), keeps the
 * broker liveness tracker (not replicated: a new controller starts a fresh one), fences
 * brokers whose session expired on a timer, and moves leadership back to preferred
 * replicas periodically (Kafka's auto.leader.rebalance).
 *
 * Liveness stays off the slow path (this node's own disk can take seconds to apply an
 * image, e.g. the 50 partitions of __consumer_offsets): a heartbeat's contact is
 * recorded when it arrives, one that changes nothing (the common case) is answered at
 * once from the tracker and the controller's image, and the fencing check and preferred
 * leader election wait for their entries to apply, not for this node's listeners. The
 * tracker is told whenever the controller runs, so a controller that was stalled does
 * not fence brokers it could not hear (see {@linkcode BrokerHeartbeatTracker.tick}).
 *
 * Requests that reach a node which is not the controller reject with
 * {@linkcode TidelogError} NOT_CONTROLLER; the caller finds the new controller and retries.
 */
import type { Logger } from "@logtape/logtape";
import { planProducerIdBlock, PRODUCER_ID_BLOCK_SIZE } from "../producer/mod.ts";
import { ErrorCode } from "../protocol/error_codes.ts";
import { NotLeaderError } from "../raft/mod.ts";
import { systemTimers, type TimerHandle, type Timers } from "../runtime/timers.ts";
import type { Clock } from "../util/clock.ts";
import { TidelogError } from "../util/errors.ts";
import { getLogger } from "../util/log.ts";
import {
  type AlterPartitionRequest,
  type AlterPartitionResult,
  type BrokerHeartbeat,
  type BrokerHeartbeatReply,
  BrokerHeartbeatTracker,
  type BrokerLivenessOptions,
  decideFencing,
  planAlterPartition,
  planPreferredLeaders,
  planRegisterBroker,
  type RegisterBrokerRequest,
} from "./cluster_controller.ts";
import type { MetadataImage } from "./metadata_image.ts";
import type { RaftMetadataStore } from "./raft_metadata_store.ts";

/**
 * A new controller gives the previous one the connection-loss grace plus this before
 * fencing it. Brokers heartbeat to a new controller as soon as they learn of it (within
 * a Raft tick or two, see BrokerLifecycle), so a live one is heard well before.
 */
const PREVIOUS_CONTROLLER_EXTRA_GRACE_MS = 150;

/** Settings of {@linkcode ControllerService}. */
export interface ControllerServiceOptions {
  nodeId: number;
  store: RaftMetadataStore;
  clock: Clock;
  /** Timers of the session and preferred-leader checks. @default systemTimers */
  timers?: Timers;
  /** Kafka `broker.session.timeout.ms`. */
  sessionTimeoutMs: number;
  /** Fence a broker whose controller connection closed and stayed closed this long. */
  connectionGraceMs?: number;
  /** How often expired sessions are looked for. @default 50 */
  fencingCheckIntervalMs?: number;
  /** Preferred-leader election period; 0 turns it off. */
  leaderImbalanceCheckIntervalMs: number;
  /** Kafka `unclean.leader.election.enable`. */
  uncleanLeaderElection: boolean;
  /** The cluster id this node writes if it is the first controller of a new cluster. */
  clusterIdForNewCluster: string;
  logger?: Logger;
}

/** A BrokerRegistration as the controller receives it. */
export interface BrokerRegistrationInput extends RegisterBrokerRequest {
  /** The cluster id the broker believes in (INCONSISTENT_CLUSTER_ID when different). */
  clusterId: string;
}

/** Maps "this node is not the Raft leader" to Kafka's NOT_CONTROLLER. */
export function asControllerError(err: unknown): unknown {
  if (err instanceof NotLeaderError) {
    return new TidelogError(
      ErrorCode.NOT_CONTROLLER,
      `This node is not the controller${
        err.leaderId !== undefined ? ` (node ${err.leaderId} is)` : ""
      }`,
    );
  }
  return err;
}

/** See the module documentation. */
export class ControllerService {
  readonly #o: ControllerServiceOptions;
  readonly #log: Logger;
  #tracker: BrokerHeartbeatTracker | null = null;
  /** The Raft term the tracker belongs to. */
  #trackerTerm = -1;
  readonly #timers: Timers;
  #fencingTimer: TimerHandle;
  #preferredTimer: TimerHandle | undefined;
  #fencingRunning = false;
  readonly #fencingIntervalMs: number;
  #closed = false;
  /** The last other controller this node knew of (see #currentTracker). */
  #previousController: number | null = null;

  constructor(options: ControllerServiceOptions) {
    this.#o = options;
    this.#log = options.logger ?? getLogger(["tidelog", "controller"]);
    this.#timers = options.timers ?? systemTimers;
    this.#fencingIntervalMs = options.fencingCheckIntervalMs ?? 50;
    this.#fencingTimer = this.#timers.setInterval(
      () => this.#checkSessions(),
      this.#fencingIntervalMs,
    );
    if (options.leaderImbalanceCheckIntervalMs > 0) {
      this.#preferredTimer = this.#timers.setInterval(
        () => this.#electPreferredLeaders(),
        options.leaderImbalanceCheckIntervalMs,
      );
    }
  }

  /** The liveness tracker of this controller term (a fresh one after each election). */
  #currentTracker(): BrokerHeartbeatTracker {
    const { term } = this.#o.store.status();
    if (this.#tracker === null || this.#trackerTerm !== term) {
      const now = this.#o.clock.nowMs();
      let tracker = BrokerHeartbeatTracker.start(now);
      const previous = this.#previousController;
      if (previous !== null && previous !== this.#o.nodeId) {
        // An election usually means the old controller died with its process, and then
        // nothing would close a connection to us: treat it as lost, with room for a
        // heartbeat, so a dead controller's partitions move in well under a session. A
        // live one heartbeats to us as soon as it learns of us and keeps its leaderships.
        tracker = tracker.connectionLost(previous, now + PREVIOUS_CONTROLLER_EXTRA_GRACE_MS);
      }
      this.#tracker = tracker;
      this.#trackerTerm = term;
      this.#log.info("Controller active in term {term}: broker sessions start now", { term });
    }
    return this.#tracker;
  }

  #liveness(): BrokerLivenessOptions {
    return {
      sessionTimeoutMs: this.#o.sessionTimeoutMs,
      ...(this.#o.connectionGraceMs !== undefined
        ? { connectionGraceMs: this.#o.connectionGraceMs }
        : {}),
      // Half a session; but the fencing timer's own period (plus its jitter) is no stall.
      controllerStallMs: Math.max(this.#o.sessionTimeoutMs / 2, 3 * this.#fencingIntervalMs),
      uncleanLeaderElection: this.#o.uncleanLeaderElection,
    };
  }

  /** The controller runs now: the tracker, told so (it notices a stall). */
  #ran(nowMs: number): BrokerHeartbeatTracker {
    this.#tracker = this.#currentTracker().tick(nowMs, this.#liveness());
    return this.#tracker;
  }

  async #propose<T>(
    plan: (image: MetadataImage) => { records: import("./records.ts").MetadataRecord[]; result: T },
  ): Promise<T> {
    try {
      return await this.#o.store.propose(plan);
    } catch (err) {
      throw asControllerError(err);
    }
  }

  /**
   * Registers (or re-registers) a broker; resolves with its new broker epoch once the
   * RegisterBroker record is committed. A new incarnation of a registered id is accepted
   * when the old one's session is over (expired, lost connection, fenced) or the id is
   * this controller's own (one process per data directory: the old one is gone).
   */
  registerBroker(req: BrokerRegistrationInput): Promise<number> {
    return this.#propose((image) => {
      if (image.clusterId !== null && req.clusterId !== image.clusterId) {
        throw new TidelogError(
          ErrorCode.INCONSISTENT_CLUSTER_ID,
          `Broker ${req.brokerId} is of cluster ${req.clusterId}, this is ${image.clusterId}`,
        );
      }
      const now = this.#o.clock.nowMs();
      const tracker = this.#ran(now);
      const existing = image.brokers.get(req.brokerId);
      const sessionExpired = req.brokerId === this.#o.nodeId || existing?.fenced === true ||
        tracker.sessionExpired(req.brokerId, now, this.#liveness());
      // The epoch is the image offset once the RegisterBroker record (the last one) applies.
      const draft = planRegisterBroker(image, req, Number.MAX_SAFE_INTEGER, { sessionExpired });
      const epoch = image.offset + draft.length;
      const records = planRegisterBroker(image, req, epoch, { sessionExpired });
      this.#tracker = tracker.registered(req.brokerId, now);
      this.#log.info("Registering broker {broker} (incarnation {incarnation}) with epoch {epoch}", {
        broker: req.brokerId,
        incarnation: req.incarnationId,
        epoch,
      });
      return { records, result: epoch };
    });
  }

  /**
   * Handles a heartbeat. One that changes nothing in the metadata log (a broker staying
   * unfenced, or fenced) is answered at once from the tracker and the controller's
   * image: it must not queue behind proposals, which can take this node's slow disk
   * with them. One that needs records (unfence, controlled shutdown) resolves once they
   * are committed and seen here (this node's own broker starts serving on that answer);
   * its contact counts from its arrival, and the broker is not silent while we hold it.
   */
  heartbeat(hb: BrokerHeartbeat): Promise<BrokerHeartbeatReply> {
    const store = this.#o.store;
    // Not the controller: the proposal below refuses with NOT_CONTROLLER.
    let answered = () => {};
    if (store.isController()) {
      const arrivedMs = this.#o.clock.nowMs();
      const tracker = this.#ran(arrivedMs);
      const image = store.controllerImage();
      if (image !== undefined) {
        const decision = tracker.heartbeat(image, hb, arrivedMs, this.#liveness());
        // A stale epoch waits for the queue's image: a registration in flight may be the
        // one this broker knows of.
        if (decision.records.length === 0 && decision.reply.errorCode === ErrorCode.NONE) {
          this.#tracker = decision.tracker;
          return Promise.resolve(decision.reply);
        }
      }
      this.#tracker = tracker.heartbeatReceived(store.image, hb, arrivedMs);
      const term = this.#trackerTerm;
      answered = () => {
        // A tracker of a later term never counted this heartbeat.
        if (this.#tracker !== null && this.#trackerTerm === term) {
          this.#tracker = this.#tracker.heartbeatAnswered(hb.brokerId, this.#o.clock.nowMs());
        }
      };
    }
    const reply = this.#propose((image) => {
      const now = this.#o.clock.nowMs();
      const decision = this.#ran(now).heartbeat(image, hb, now, this.#liveness());
      this.#tracker = decision.tracker;
      if (decision.records.length > 0) {
        this.#log.info("Broker {broker}: {state}", {
          broker: hb.brokerId,
          state: decision.reply.shouldShutDown
            ? "shutting down"
            : decision.reply.inControlledShutdown
            ? "controlled shutdown, moving its leaderships"
            : decision.reply.isFenced
            ? "fenced"
            : "unfenced",
        });
      }
      return { records: decision.records, result: decision.reply };
    });
    reply.then(answered, answered);
    return reply;
  }

  /** The connection that carried `brokerId`'s heartbeats closed (EOF/RST, as on kill -9). */
  connectionLost(brokerId: number): void {
    if (this.#closed || !this.#o.store.isController()) return;
    const now = this.#o.clock.nowMs();
    this.#tracker = this.#ran(now).connectionLost(brokerId, now);
    this.#log.info("Lost the connection of broker {broker}", { broker: brokerId });
  }

  /** Handles one partition of an AlterPartition request. */
  alterPartition(req: AlterPartitionRequest): Promise<AlterPartitionResult> {
    return this.#propose((image) => {
      const result = planAlterPartition(image, req);
      if (result.records.length > 0) {
        this.#log.info("ISR of {topicId}-{partition} becomes {isr} (asked by leader {broker})", {
          topicId: req.topicId,
          partition: req.partitionId,
          isr: req.newIsr.join(","),
          broker: req.brokerId,
        });
      }
      return { records: result.records, result };
    });
  }

  /** Reserves a block of producer ids for `brokerId` (Kafka's AllocateProducerIds). */
  allocateProducerIds(
    brokerId: number,
    brokerEpoch: number,
  ): Promise<{ start: number; length: number }> {
    return this.#propose((image) => {
      const reg = image.brokers.get(brokerId);
      if (!reg || reg.brokerEpoch !== brokerEpoch) {
        throw new TidelogError(
          ErrorCode.STALE_BROKER_EPOCH,
          `Broker ${brokerId} epoch ${brokerEpoch} is not its registration`,
        );
      }
      const plan = planProducerIdBlock(image, { brokerId, blockSize: PRODUCER_ID_BLOCK_SIZE });
      return {
        records: plan.records,
        result: { start: plan.result, length: PRODUCER_ID_BLOCK_SIZE },
      };
    });
  }

  async #checkSessions(): Promise<void> {
    if (this.#closed) return;
    if (!this.#o.store.isController()) {
      const known = this.#o.store.controllerId();
      if (known !== null && known !== this.#o.nodeId) this.#previousController = known;
      return;
    }
    // Recorded on every tick, even while a check is still in flight: the tracker tells
    // a stalled controller (no tick for a while) from a slow proposal (ticks go on).
    this.#ran(this.#o.clock.nowMs());
    if (this.#fencingRunning) return;
    this.#fencingRunning = true;
    try {
      // Applied, not seen by the listeners: the next check must not wait for this node's
      // partitions (a slow disk) to catch up.
      await this.#o.store.proposeApplied((image) => {
        if (image.clusterId === null) {
          this.#log.info("Formatting a new cluster {clusterId}", {
            clusterId: this.#o.clusterIdForNewCluster,
          });
          return {
            records: [
              { type: "Cluster", clusterId: this.#o.clusterIdForNewCluster },
              // As Kafka 4.1 formats a cluster (it needs a cluster-level min ISR for
              // KIP-966): the default of 1, reported as a cluster-wide dynamic config.
              { type: "Config", broker: "", name: "min.insync.replicas", value: "1" },
            ],
            result: undefined,
          };
        }
        const now = this.#o.clock.nowMs();
        const records = decideFencing(image, this.#ran(now), now, this.#liveness());
        for (const r of records) {
          if (r.type === "BrokerRegistrationChange" && r.fenced === true) {
            this.#log.warn(
              "Fencing broker {broker}: no heartbeat within the session timeout, or its connection closed",
              {
                broker: r.brokerId,
              },
            );
          }
        }
        return { records, result: undefined };
      });
    } catch (err) {
      if (!(err instanceof NotLeaderError) && !this.#closed) {
        this.#log.warn("Fencing check failed: {error}", { error: String(err) });
      }
    } finally {
      this.#fencingRunning = false;
    }
  }

  async #electPreferredLeaders(): Promise<void> {
    if (this.#closed || !this.#o.store.isController()) return;
    try {
      const moved = await this.#o.store.proposeApplied((image) => {
        const records = planPreferredLeaders(image);
        return { records, result: records.length };
      });
      if (moved > 0) {
        this.#log.info("Moved {count} partition leadership(s) back to preferred replicas", {
          count: moved,
        });
      }
    } catch (err) {
      if (!(err instanceof NotLeaderError) && !this.#closed) {
        this.#log.warn("Preferred leader election failed: {error}", { error: String(err) });
      }
    }
  }

  /** Stops the timers. */
  close(): void {
    this.#closed = true;
    this.#timers.clearInterval(this.#fencingTimer);
    this.#timers.clearInterval(this.#preferredTimer);
  }
}
