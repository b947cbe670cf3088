/**
 * The controller's cluster decisions as pure functions (DESIGN §7, after Kafka KRaft's
 * ClusterControlManager, ReplicationControlManager, PartitionChangeBuilder and
 * BrokerHeartbeatManager): broker registration, liveness (heartbeats, session expiry,
 * lost connections), partition leader election, preferred leaders and AlterPartition.
 * Each takes an image (plus the controller-local {@linkcode BrokerHeartbeatTracker} and
 * `nowMs` where time matters) and returns the records that carry the decision out; the
 * shell proposes them, in order, and applies them. Every image reached by applying the
 * output prefix by prefix keeps I5: a partition's leader is -1 or an unfenced ISR member.
 */
import { ErrorCode } from "../protocol/error_codes.ts";
import { assert } from "../util/assert.ts";
import { TidelogError } from "../util/errors.ts";
import type { MetadataImage, PartitionState, TopicIdPartition } from "./metadata_image.ts";
import type {
  BrokerEndpoint,
  BrokerRegistrationChangeRecord,
  LeaderRecoveryState,
  MetadataRecord,
  PartitionChangeRecord,
} from "./records.ts";

/** How leaders are elected. */
export interface LeaderElectionOptions {
  /**
   * Kafka `unclean.leader.election.enable`: when no ISR member can lead, elect any live
   * replica (ISR reset to it, leader recovery state RECOVERING; data may be lost).
   * @default false
   */
  uncleanLeaderElection?: boolean;
}

/** Why leaders are re-elected (Kafka's generateLeaderAndIsrUpdates callers). */
export type LeaderChangeReason =
  /** The broker is (being) fenced: it leaves every ISR (never emptying one) and leads nothing. */
  | { readonly kind: "brokerFenced"; readonly brokerId: number }
  /** The broker enters controlled shutdown: as fenced. */
  | { readonly kind: "brokerShutdown"; readonly brokerId: number }
  /** The broker is (being) unregistered: as fenced. */
  | { readonly kind: "brokerUnregistered"; readonly brokerId: number }
  /** The broker is (being) unfenced: leaderless partitions may elect it. */
  | { readonly kind: "brokerUnfenced"; readonly brokerId: number };

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

interface ElectionInput {
  /** A broker to take out of the ISR and leadership (treated as inactive). */
  remove?: number;
  /** A broker to treat as active whatever the image says. */
  add?: number;
  unclean: boolean;
}

/**
 * Kafka's PartitionChangeBuilder for a broker leaving or joining: the ISR without
 * `remove` (but never empty: the last member stays, as Kafka without ELR), and a leader
 * kept if still valid, else the first replica in the target ISR that is active, else
 * (unclean) the first active replica, else -1. Null when nothing changes.
 */
function buildChange(
  image: MetadataImage,
  tp: TopicIdPartition,
  p: PartitionState,
  input: ElectionInput,
): PartitionChangeRecord | null {
  const acceptable = (r: number) => r !== input.remove && (r === input.add || image.isActive(r));
  let targetIsr = p.isr.filter((r) => r !== input.remove);
  if (targetIsr.length === 0) targetIsr = [...p.isr];
  const valid = (r: number) => targetIsr.includes(r) && acceptable(r);
  let leader = p.leader;
  let unclean = false;
  if (!valid(p.leader)) {
    leader = p.replicas.find(valid) ?? -1;
    if (leader === -1 && input.unclean) {
      leader = p.replicas.find(acceptable) ?? -1;
      unclean = leader !== -1;
    }
  }
  const change: {
    leader?: number;
    isr?: readonly number[];
    leaderRecoveryState?: LeaderRecoveryState;
  } = {};
  if (leader !== p.leader) change.leader = leader;
  if (unclean) {
    change.isr = [leader];
    if (p.leaderRecoveryState !== 1) change.leaderRecoveryState = 1;
  } else if (!sameList(targetIsr, p.isr)) {
    change.isr = targetIsr;
  }
  if (Object.keys(change).length === 0) return null;
  return { type: "PartitionChange", topicId: tp.topicId, partitionId: tp.partitionId, ...change };
}

/**
 * The PartitionChange records for `reason`: a broker that is fenced, shutting down or
 * unregistered leaves every ISR (unless it is the last member, which stays so the
 * partition remembers who has its data) and every leadership, the new leader being
 * the first replica, in replica order, that is in the ISR and active; a broker being
 * unfenced may lead the leaderless partitions whose ISR it is in. Works on the image
 * before or after the broker's own BrokerRegistrationChange is applied.
 */
export function planLeaderChanges(
  image: MetadataImage,
  reason: LeaderChangeReason,
  options: LeaderElectionOptions = {},
): PartitionChangeRecord[] {
  const unclean = options.uncleanLeaderElection ?? false;
  const input: ElectionInput = reason.kind === "brokerUnfenced"
    ? { add: reason.brokerId, unclean }
    : { remove: reason.brokerId, unclean };
  const partitions = reason.kind === "brokerUnfenced"
    ? image.partitionsWithoutLeader()
    : image.partitionsWithBrokerInIsr(reason.brokerId);
  const out: PartitionChangeRecord[] = [];
  for (const tp of partitions) {
    const change = buildChange(image, tp, image.partition(tp)!, input);
    if (change) out.push(change);
  }
  return out;
}

/**
 * Preferred-leader election (Kafka `auto.leader.rebalance.enable`): every partition whose
 * first replica is active, in the ISR and not its leader gets it back as leader.
 * Partitions still RECOVERING from an unclean election are left alone.
 */
export function planPreferredLeaders(image: MetadataImage): PartitionChangeRecord[] {
  const out: PartitionChangeRecord[] = [];
  const ids = [...image.topicsById.keys()].sort();
  for (const topicId of ids) {
    image.topicsById.get(topicId)!.partitions.forEach((p, partitionId) => {
      const preferred = p.replicas[0];
      if (
        preferred !== undefined && preferred !== p.leader && p.leaderRecoveryState === 0 &&
        p.isr.includes(preferred) && image.isActive(preferred)
      ) {
        out.push({ type: "PartitionChange", topicId, partitionId, leader: preferred });
      }
    });
  }
  return out;
}

/** Kafka's ElectionType. */
export const ElectionType = { PREFERRED: 0, UNCLEAN: 1 } as const;

/**
 * Plans an ElectLeaders entry for one partition, as Kafka's controller does: PREFERRED
 * moves leadership to the first replica when it is active and in the ISR; UNCLEAN elects
 * only a leaderless partition, from the ISR if a member is active, else any active
 * replica (ISR reset to it, RECOVERING). ELECTION_NOT_NEEDED when the preferred replica
 * already leads (or, unclean, when there is a leader); PREFERRED_LEADER_NOT_AVAILABLE or
 * ELIGIBLE_LEADERS_NOT_AVAILABLE when nobody can be elected.
 */
export function planElectLeader(
  image: MetadataImage,
  topicName: string,
  partitionId: number,
  electionType: number,
): PartitionChangeRecord {
  const topic = image.topic(topicName);
  if (!topic) {
    throw new TidelogError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `No such topic as ${topicName}`);
  }
  const p = topic.partitions[partitionId];
  if (!p) {
    throw new TidelogError(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      `No such partition as ${topicName}-${partitionId}`,
    );
  }
  if (electionType !== ElectionType.PREFERRED && electionType !== ElectionType.UNCLEAN) {
    throw new TidelogError(ErrorCode.INVALID_REQUEST, `Unknown election type ${electionType}`);
  }
  const preferred = p.replicas[0];
  if (
    electionType === ElectionType.PREFERRED ? p.leader === preferred : p.leader !== -1
  ) {
    throw new TidelogError(
      ErrorCode.ELECTION_NOT_NEEDED,
      "Leader election not needed for topic partition.",
    );
  }
  const tp = { topicId: topic.topicId, partitionId };
  if (electionType === ElectionType.PREFERRED) {
    if (
      preferred === undefined || p.leaderRecoveryState !== 0 || !p.isr.includes(preferred) ||
      !image.isActive(preferred)
    ) {
      throw new TidelogError(
        ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
        `Failed to elect leader for partition ${topicName}-${partitionId} under strategy PreferredReplicaPartitionLeaderElectionStrategy`,
      );
    }
    return { type: "PartitionChange", ...tp, leader: preferred };
  }
  const change = buildChange(image, tp, p, { unclean: true });
  if (!change || change.leader === undefined || change.leader === -1) {
    throw new TidelogError(
      ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
      `Failed to elect leader for partition ${topicName}-${partitionId} under strategy UncleanLeaderElectionStrategy`,
    );
  }
  return change;
}

/** A BrokerRegistration request (Kafka's BrokerRegistrationRequest, the parts we use). */
export interface RegisterBrokerRequest {
  brokerId: number;
  incarnationId: string;
  endpoints: readonly BrokerEndpoint[];
  rack: string | null;
}

/**
 * Plans a broker registration: a RegisterBroker record (fenced) with epoch `offset`,
 * preceded, when the id was registered before, by the leader changes that take the old
 * registration out of ISRs and leaderships (Kafka's handleBrokerUncleanShutdown).
 * A re-registration with the same incarnation is a retry and is accepted.
 * @param offset the new broker epoch: the metadata offset at registration (the image's
 *   offset once the record is applied is the natural choice); must exceed the old epoch
 * @param options.sessionExpired whether the current registration's session has expired
 *   ({@linkcode BrokerHeartbeatTracker.sessionExpired})
 * @throws {TidelogError} DUPLICATE_BROKER_REGISTRATION when another incarnation holds
 *   the id with a valid session
 */
export function planRegisterBroker(
  image: MetadataImage,
  req: RegisterBrokerRequest,
  offset: number,
  options: { sessionExpired: boolean },
): MetadataRecord[] {
  const existing = image.brokers.get(req.brokerId);
  if (existing && existing.incarnationId !== req.incarnationId && !options.sessionExpired) {
    throw new TidelogError(
      ErrorCode.DUPLICATE_BROKER_REGISTRATION,
      `Another broker is registered with that broker id: ${req.brokerId}`,
    );
  }
  assert(
    !existing || offset > existing.brokerEpoch,
    `Broker epoch ${offset} for broker ${req.brokerId} does not exceed ${existing?.brokerEpoch}`,
  );
  const records: MetadataRecord[] = existing
    ? planLeaderChanges(image, { kind: "brokerFenced", brokerId: req.brokerId })
    : [];
  records.push({
    type: "RegisterBroker",
    brokerId: req.brokerId,
    incarnationId: req.incarnationId,
    brokerEpoch: offset,
    endpoints: req.endpoints.map((e) => ({ host: e.host, port: e.port })),
    rack: req.rack,
    fenced: true,
  });
  return records;
}

/**
 * Plans the removal of a broker's registration: it leaves every ISR and leadership,
 * then its UnregisterBroker record.
 * @throws {TidelogError} BROKER_ID_NOT_REGISTERED for an unknown id
 */
export function planUnregisterBroker(image: MetadataImage, brokerId: number): MetadataRecord[] {
  const broker = image.brokers.get(brokerId);
  if (!broker) {
    throw new TidelogError(
      ErrorCode.BROKER_ID_NOT_REGISTERED,
      `Broker ID not registered: ${brokerId}`,
    );
  }
  return [
    ...planLeaderChanges(image, { kind: "brokerUnregistered", brokerId }),
    { type: "UnregisterBroker", brokerId, brokerEpoch: broker.brokerEpoch },
  ];
}

function fenceRecords(
  image: MetadataImage,
  brokerId: number,
  options: LeaderElectionOptions,
): MetadataRecord[] {
  const broker = image.brokers.get(brokerId)!;
  // Leaders move first, so no intermediate image has a fenced leader (I5).
  return [
    ...planLeaderChanges(image, { kind: "brokerFenced", brokerId }, options),
    { type: "BrokerRegistrationChange", brokerId, brokerEpoch: broker.brokerEpoch, fenced: true },
  ];
}

function unfenceRecords(
  image: MetadataImage,
  brokerId: number,
  options: LeaderElectionOptions,
): MetadataRecord[] {
  const broker = image.brokers.get(brokerId)!;
  const change: BrokerRegistrationChangeRecord = broker.inControlledShutdown
    ? {
      type: "BrokerRegistrationChange",
      brokerId,
      brokerEpoch: broker.brokerEpoch,
      fenced: false,
      inControlledShutdown: false,
    }
    : {
      type: "BrokerRegistrationChange",
      brokerId,
      brokerEpoch: broker.brokerEpoch,
      fenced: false,
    };
  const after = image.apply(change);
  return [change, ...planLeaderChanges(after, { kind: "brokerUnfenced", brokerId }, options)];
}

/** Liveness timing (DESIGN §7). */
export interface BrokerLivenessOptions extends LeaderElectionOptions {
  /**
   * A broker silent for longer than this is fenced (Kafka `broker.session.timeout.ms`).
   * @default 1500
   */
  sessionTimeoutMs?: number;
  /**
   * A broker whose connection closed and that has not heartbeat again for longer than
   * this is fenced without waiting out the session.
   * @default 200
   */
  connectionGraceMs?: number;
  /**
   * The controller itself did not run for longer than this (between two
   * {@linkcode BrokerHeartbeatTracker.tick}s): it was stalled, heard nobody meanwhile, and
   * gives every broker a fresh session from the moment it resumed.
   * @default half the session timeout
   */
  controllerStallMs?: number;
}

const DEFAULT_SESSION_TIMEOUT_MS = 1500;
const DEFAULT_CONNECTION_GRACE_MS = 200;

/** What the controller remembers about one broker's liveness (not replicated). */
export interface BrokerSession {
  /** Last heartbeat or registration. */
  readonly lastContactMs: number;
  /** When its connection closed, if it has not heartbeat since. */
  readonly connectionLostMs: number | null;
  /** The last `currentMetadataOffset` it reported; -1 before its first heartbeat. */
  readonly metadataOffset: number;
  /**
   * While in controlled shutdown: the offset every live broker must reach (they have
   * seen the moved leaderships) before it may stop.
   */
  readonly controlledShutdownOffset: number | null;
  /**
   * Its heartbeats the controller holds (received, waiting for their records to commit):
   * a broker waiting for our answer is not silent, however long our disk takes.
   */
  readonly heartbeatsInFlight: number;
}

/** A BrokerHeartbeat request (Kafka's BrokerHeartbeatRequest). */
export interface BrokerHeartbeat {
  brokerId: number;
  brokerEpoch: number;
  /** The offset of the broker's own metadata image. */
  currentMetadataOffset: number;
  wantFence: boolean;
  wantShutDown: boolean;
}

/** A BrokerHeartbeat response (Kafka's BrokerHeartbeatResponse). */
export interface BrokerHeartbeatReply {
  errorCode: ErrorCode;
  /** The broker has applied its own registration. */
  isCaughtUp: boolean;
  isFenced: boolean;
  /** The broker may finish its shutdown. */
  shouldShutDown: boolean;
  inControlledShutdown: boolean;
}

/** The outcome of one heartbeat: the next tracker, the reply and the records to propose. */
export interface HeartbeatDecision {
  tracker: BrokerHeartbeatTracker;
  reply: BrokerHeartbeatReply;
  records: MetadataRecord[];
}

type BrokerControlState = "fenced" | "unfenced" | "controlledShutdown" | "shutdownNow";

/**
 * The controller's broker liveness state (Kafka's BrokerHeartbeatManager), as an
 * immutable value: every input returns a new tracker. It lives only on the active
 * controller; a new controller starts one with {@linkcode BrokerHeartbeatTracker.start},
 * which gives every registered broker a fresh session from that moment.
 *
 * Silence is only evidence when the controller could have heard: a heartbeat counts from
 * its arrival ({@linkcode BrokerHeartbeatTracker.heartbeatReceived}), not from when the
 * controller got round to it; a broker whose heartbeat the controller still holds is not
 * silent; and a controller that did not run for longer than `controllerStallMs`
 * ({@linkcode BrokerHeartbeatTracker.tick}) heard nobody meanwhile, so, like a new
 * controller, it gives every broker a fresh session from the moment it resumed.
 */
export class BrokerHeartbeatTracker {
  /** When this controller started tracking: the session start of brokers not yet heard. */
  readonly startMs: number;
  readonly sessions: ReadonlyMap<number, BrokerSession>;
  /** The last time the controller ran ({@linkcode BrokerHeartbeatTracker.tick}). */
  readonly lastRunMs: number;
  /**
   * When the controller last resumed after a stall (or started): no session is older, and
   * a connection lost before it counts its grace from it.
   */
  readonly resumedMs: number;

  private constructor(
    startMs: number,
    sessions: ReadonlyMap<number, BrokerSession>,
    lastRunMs: number,
    resumedMs: number,
  ) {
    this.startMs = startMs;
    this.sessions = sessions;
    this.lastRunMs = lastRunMs;
    this.resumedMs = resumedMs;
  }

  /** A tracker for a controller that became active at `nowMs`. */
  static start(nowMs: number): BrokerHeartbeatTracker {
    return new BrokerHeartbeatTracker(nowMs, new Map(), nowMs, nowMs);
  }

  /** The session of `brokerId` (a fresh one from `startMs` if never heard). */
  session(brokerId: number): BrokerSession {
    return this.sessions.get(brokerId) ?? {
      lastContactMs: this.startMs,
      connectionLostMs: null,
      metadataOffset: -1,
      controlledShutdownOffset: null,
      heartbeatsInFlight: 0,
    };
  }

  #with(brokerId: number, session: BrokerSession): BrokerHeartbeatTracker {
    return new BrokerHeartbeatTracker(
      this.startMs,
      new Map(this.sessions).set(brokerId, session),
      this.lastRunMs,
      this.resumedMs,
    );
  }

  /**
   * The controller runs at `nowMs` (the shell calls this on every fencing timer tick and
   * before each liveness decision). If it last ran more than `controllerStallMs` ago, its
   * event loop or disk stopped it: heartbeats sent meanwhile were not read, so the
   * silence is no evidence, and every session restarts now (as with a new controller).
   */
  tick(nowMs: number, options: BrokerLivenessOptions = {}): BrokerHeartbeatTracker {
    const stallMs = options.controllerStallMs ??
      (options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS) / 2;
    const resumedMs = nowMs - this.lastRunMs > stallMs ? nowMs : this.resumedMs;
    return new BrokerHeartbeatTracker(this.startMs, this.sessions, nowMs, resumedMs);
  }

  /** After a registration of `brokerId` at `nowMs`: a new session. */
  registered(brokerId: number, nowMs: number): BrokerHeartbeatTracker {
    return this.#with(brokerId, {
      lastContactMs: nowMs,
      connectionLostMs: null,
      metadataOffset: -1,
      controlledShutdownOffset: null,
      // Heartbeats still held are counted off as they are answered, whatever their epoch.
      heartbeatsInFlight: this.session(brokerId).heartbeatsInFlight,
    });
  }

  /** After `brokerId`'s connection to the controller closed at `nowMs` (EOF/RST). */
  connectionLost(brokerId: number, nowMs: number): BrokerHeartbeatTracker {
    const s = this.session(brokerId);
    if (s.connectionLostMs !== null) return this;
    return this.#with(brokerId, { ...s, connectionLostMs: nowMs });
  }

  /** After `brokerId` connected again (a heartbeat does this too). */
  connectionRestored(brokerId: number): BrokerHeartbeatTracker {
    const s = this.session(brokerId);
    if (s.connectionLostMs === null) return this;
    return this.#with(brokerId, { ...s, connectionLostMs: null });
  }

  /** After `brokerId` was unregistered. */
  forget(brokerId: number): BrokerHeartbeatTracker {
    const sessions = new Map(this.sessions);
    sessions.delete(brokerId);
    return new BrokerHeartbeatTracker(this.startMs, sessions, this.lastRunMs, this.resumedMs);
  }

  /**
   * A heartbeat arrived at `nowMs` and will be held until its records commit (it was not
   * answered at once with {@linkcode BrokerHeartbeatTracker.heartbeat}): the broker is in
   * contact now and stays so while it waits for us. Only the current registration's
   * heartbeats count (`image`: the latest the controller has); others change nothing.
   * Settle it with {@linkcode BrokerHeartbeatTracker.heartbeatAnswered}.
   */
  heartbeatReceived(
    image: MetadataImage,
    hb: BrokerHeartbeat,
    nowMs: number,
  ): BrokerHeartbeatTracker {
    if (image.brokers.get(hb.brokerId)?.brokerEpoch !== hb.brokerEpoch) return this;
    const s = this.session(hb.brokerId);
    return this.#with(hb.brokerId, {
      ...s,
      lastContactMs: Math.max(s.lastContactMs, nowMs),
      connectionLostMs: null,
      heartbeatsInFlight: s.heartbeatsInFlight + 1,
    });
  }

  /**
   * A held heartbeat of `brokerId` was answered at `nowMs` (or failed): the broker waited
   * until now, and its silence counts from here. Ignored if none is held (e.g. the
   * session was forgotten meanwhile).
   */
  heartbeatAnswered(brokerId: number, nowMs: number): BrokerHeartbeatTracker {
    const s = this.sessions.get(brokerId);
    if (s === undefined || s.heartbeatsInFlight === 0) return this;
    return this.#with(brokerId, {
      ...s,
      lastContactMs: Math.max(s.lastContactMs, nowMs),
      heartbeatsInFlight: s.heartbeatsInFlight - 1,
    });
  }

  /**
   * Whether `brokerId`'s session is over at `nowMs`: silent for longer than the session
   * timeout, or its connection lost for longer than the grace, both counted from no
   * earlier than the controller's last resume. A broker with a heartbeat held is not
   * silent (its connection can still be lost: then it died waiting).
   */
  sessionExpired(brokerId: number, nowMs: number, options: BrokerLivenessOptions = {}): boolean {
    const s = this.session(brokerId);
    const timeoutMs = options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    const graceMs = options.connectionGraceMs ?? DEFAULT_CONNECTION_GRACE_MS;
    const silent = s.heartbeatsInFlight === 0 &&
      nowMs - Math.max(s.lastContactMs, this.resumedMs) > timeoutMs;
    const lost = s.connectionLostMs !== null &&
      nowMs - Math.max(s.connectionLostMs, this.resumedMs) > graceMs;
    return silent || lost;
  }

  /**
   * Handles one heartbeat (Kafka's processBrokerHeartbeat and calculateNextBrokerState):
   * a fenced broker is unfenced once it has caught up (`currentMetadataOffset` reached
   * its registration) and does not want to be fenced; an unfenced one wanting to shut
   * down enters controlled shutdown (its leaderships move) and may stop once it leads
   * nothing and every live broker has seen that; `wantFence` fences. A heartbeat with
   * an epoch other than the registration's gets STALE_BROKER_EPOCH and changes nothing.
   * The broker is in contact at `nowMs`: call it at the heartbeat's arrival when the
   * answer can be given at once (no records), else at planning time, the arrival having
   * been recorded with {@linkcode BrokerHeartbeatTracker.heartbeatReceived}.
   */
  heartbeat(
    image: MetadataImage,
    hb: BrokerHeartbeat,
    nowMs: number,
    options: LeaderElectionOptions = {},
  ): HeartbeatDecision {
    const reg = image.brokers.get(hb.brokerId);
    if (!reg || reg.brokerEpoch !== hb.brokerEpoch) {
      return {
        tracker: this,
        records: [],
        reply: {
          errorCode: ErrorCode.STALE_BROKER_EPOCH,
          isCaughtUp: false,
          isFenced: true,
          shouldShutDown: false,
          inControlledShutdown: false,
        },
      };
    }
    const id = hb.brokerId;
    const prev = this.session(id);
    const touched = this.#with(id, {
      lastContactMs: Math.max(prev.lastContactMs, nowMs),
      connectionLostMs: null,
      metadataOffset: hb.currentMetadataOffset,
      controlledShutdownOffset: prev.controlledShutdownOffset,
      heartbeatsInFlight: prev.heartbeatsInFlight,
    });
    const caughtUp = hb.currentMetadataOffset >= reg.registrationOffset;
    const current: BrokerControlState = reg.fenced
      ? "fenced"
      : reg.inControlledShutdown
      ? "controlledShutdown"
      : "unfenced";
    const leads = () => image.partitionsLedBy(id).length > 0;
    let next: BrokerControlState = current;
    switch (current) {
      case "fenced":
        next = hb.wantShutDown ? "shutdownNow" : !hb.wantFence && caughtUp ? "unfenced" : "fenced";
        break;
      case "unfenced":
        if (hb.wantFence) next = hb.wantShutDown ? "shutdownNow" : "fenced";
        else if (hb.wantShutDown) next = leads() ? "controlledShutdown" : "shutdownNow";
        break;
      case "controlledShutdown": {
        const target = prev.controlledShutdownOffset ?? image.offset;
        if (!leads() && target <= touched.#lowestActiveOffset(image)) next = "shutdownNow";
        break;
      }
    }
    let records: MetadataRecord[] = [];
    let controlledShutdownOffset: number | null = null;
    if (next !== current) {
      if (next === "unfenced") records = unfenceRecords(image, id, options);
      else if (next === "controlledShutdown") {
        const change: MetadataRecord = {
          type: "BrokerRegistrationChange",
          brokerId: id,
          brokerEpoch: reg.brokerEpoch,
          inControlledShutdown: true,
        };
        records = [
          change,
          ...planLeaderChanges(
            image.apply(change),
            { kind: "brokerShutdown", brokerId: id },
            options,
          ),
        ];
        controlledShutdownOffset = image.offset + records.length;
      } else if (current !== "fenced") records = fenceRecords(image, id, options);
    } else if (current === "controlledShutdown") {
      // A controller that took over mid-shutdown waits for today's offset, once.
      controlledShutdownOffset = prev.controlledShutdownOffset ?? image.offset;
    }
    return {
      tracker: touched.#with(id, { ...touched.session(id), controlledShutdownOffset }),
      records,
      reply: {
        errorCode: ErrorCode.NONE,
        isCaughtUp: caughtUp,
        isFenced: next === "fenced" || next === "shutdownNow",
        shouldShutDown: next === "shutdownNow",
        inControlledShutdown: next === "controlledShutdown",
      },
    };
  }

  /** The lowest metadata offset reported by an unfenced broker (-1 if one has not reported). */
  #lowestActiveOffset(image: MetadataImage): number {
    let lowest = Infinity;
    for (const b of image.liveBrokers()) lowest = Math.min(lowest, this.session(b).metadataOffset);
    return lowest;
  }
}

/**
 * The records that fence, at `nowMs`, every unfenced broker whose session expired
 * (silent past `sessionTimeoutMs`) or whose connection closed more than
 * `connectionGraceMs` ago without a heartbeat since, as
 * {@linkcode BrokerHeartbeatTracker.sessionExpired} says (so never on silence from
 * before the controller's last stall, nor while a heartbeat of the broker is held): for
 * each, by broker id, the leader changes that move its leaderships to live ISR members
 * (or -1) and shrink it out of the ISRs, then its fencing BrokerRegistrationChange.
 */
export function decideFencing(
  image: MetadataImage,
  tracker: BrokerHeartbeatTracker,
  nowMs: number,
  options: BrokerLivenessOptions = {},
): MetadataRecord[] {
  let working = image;
  const records: MetadataRecord[] = [];
  const ids = [...image.brokers.keys()].sort((a, b) => a - b);
  for (const id of ids) {
    if (working.brokers.get(id)!.fenced || !tracker.sessionExpired(id, nowMs, options)) continue;
    const fence = fenceRecords(working, id, options);
    working = working.applyAll(fence);
    records.push(...fence);
  }
  return records;
}

/** An AlterPartition request for one partition (Kafka's AlterPartitionRequest). */
export interface AlterPartitionRequest {
  /** The sender, which must be the partition's leader. */
  brokerId: number;
  brokerEpoch: number;
  topicId: string;
  partitionId: number;
  leaderEpoch: number;
  partitionEpoch: number;
  newIsr: readonly number[];
  /** Absent: unchanged; a RECOVERING leader sends RECOVERED (0) once it has recovered. */
  leaderRecoveryState?: LeaderRecoveryState;
}

/** The outcome of an AlterPartition: an error code, or the records and the new state. */
export interface AlterPartitionResult {
  errorCode: ErrorCode;
  /** Empty on error, or when the ISR is already the requested one. */
  records: PartitionChangeRecord[];
  /** The partition state after the records (for the response); null on error. */
  partition: PartitionState | null;
}

/**
 * Plans an ISR change proposed by a partition leader (Kafka's
 * ReplicationControlManager.alterPartition), checking in Kafka's order: the sender's
 * broker epoch (STALE_BROKER_EPOCH), the partition (UNKNOWN_TOPIC_ID,
 * UNKNOWN_TOPIC_OR_PARTITION), the leader epoch (FENCED_LEADER_EPOCH when older,
 * NOT_CONTROLLER when newer), the sender being the leader (NOT_LEADER_OR_FOLLOWER), the
 * partition epoch (INVALID_UPDATE_VERSION when older, NOT_CONTROLLER when newer), the
 * new ISR's shape (INVALID_REQUEST: empty, duplicates, not replicas, leader missing, or
 * more than the leader while RECOVERING) and its members (INELIGIBLE_REPLICA: fenced or
 * unregistered, or in controlled shutdown and not already in the ISR).
 */
export function planAlterPartition(
  image: MetadataImage,
  req: AlterPartitionRequest,
): AlterPartitionResult {
  const err = (errorCode: ErrorCode): AlterPartitionResult => ({
    errorCode,
    records: [],
    partition: null,
  });
  const sender = image.brokers.get(req.brokerId);
  if (!sender || sender.brokerEpoch !== req.brokerEpoch) return err(ErrorCode.STALE_BROKER_EPOCH);
  const topic = image.topicsById.get(req.topicId);
  if (!topic) return err(ErrorCode.UNKNOWN_TOPIC_ID);
  const p = topic.partitions[req.partitionId];
  if (!p) return err(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  if (req.leaderEpoch < p.leaderEpoch) return err(ErrorCode.FENCED_LEADER_EPOCH);
  if (req.leaderEpoch > p.leaderEpoch) return err(ErrorCode.NOT_CONTROLLER);
  if (req.brokerId !== p.leader) return err(ErrorCode.NOT_LEADER_OR_FOLLOWER);
  if (req.partitionEpoch < p.partitionEpoch) return err(ErrorCode.INVALID_UPDATE_VERSION);
  if (req.partitionEpoch > p.partitionEpoch) return err(ErrorCode.NOT_CONTROLLER);
  const newIsr = req.newIsr;
  if (
    newIsr.length === 0 || new Set(newIsr).size !== newIsr.length ||
    !newIsr.every((r) => p.replicas.includes(r)) || !newIsr.includes(p.leader)
  ) {
    return err(ErrorCode.INVALID_REQUEST);
  }
  const lrs = req.leaderRecoveryState ?? p.leaderRecoveryState;
  if (lrs === 1 && p.leaderRecoveryState === 0) return err(ErrorCode.INVALID_REQUEST);
  // KIP-704 (Kafka's rule): a request still saying RECOVERING may not grow the ISR; one
  // saying RECOVERED may, in the same change that ends the recovery.
  if (lrs === 1 && newIsr.length > 1) return err(ErrorCode.INVALID_REQUEST);
  for (const r of newIsr) {
    const b = image.brokers.get(r);
    if (!b || b.fenced || (b.inControlledShutdown && !p.isr.includes(r))) {
      return err(ErrorCode.INELIGIBLE_REPLICA);
    }
  }
  const change: { isr?: readonly number[]; leaderRecoveryState?: LeaderRecoveryState } = {};
  if (!sameList(newIsr, p.isr)) change.isr = [...newIsr];
  if (lrs !== p.leaderRecoveryState) change.leaderRecoveryState = lrs;
  if (Object.keys(change).length === 0) {
    return { errorCode: ErrorCode.NONE, records: [], partition: p };
  }
  const record: PartitionChangeRecord = {
    type: "PartitionChange",
    topicId: req.topicId,
    partitionId: req.partitionId,
    ...change,
  };
  const after = image.apply(record).partition(req)!;
  return { errorCode: ErrorCode.NONE, records: [record], partition: after };
}
