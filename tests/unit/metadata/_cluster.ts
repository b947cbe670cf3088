/**
 * Test helpers for the cluster controller: images with registered brokers, an I5
 * checker, and a random-event driver that runs the controller's decisions the way the
 * shell will (plan against the latest image, apply the records in order).
 */
import fc from "fast-check";
import {
  BrokerHeartbeatTracker,
  type ControllerContext,
  decideFencing,
  MetadataImage,
  type MetadataRecord,
  planAlterPartition,
  planCreateTopic,
  planPreferredLeaders,
  planRegisterBroker,
  planUnregisterBroker,
} from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { TidelogError } from "../../../lib/util/errors.ts";

/** A context that places replicas from the image's brokers. */
export function imageContext(defaultReplicationFactor = 3): ControllerContext {
  let n = 0;
  return {
    defaults: { numPartitions: 1, defaultReplicationFactor },
    newTopicId: () => `topic-${String(++n).padStart(4, "0")}`,
  };
}

/** Registers `ids` (incarnation `inc-<id>`) and, unless `fenced`, unfences them. */
export function withBrokers(
  image: MetadataImage,
  ids: readonly number[],
  options: { fenced?: readonly number[] } = {},
): MetadataImage {
  for (const id of ids) {
    image = image.applyAll(
      planRegisterBroker(
        image,
        {
          brokerId: id,
          incarnationId: `inc-${id}`,
          endpoints: [{ host: "127.0.0.1", port: 9091 + id }],
          rack: null,
        },
        image.offset + 1,
        { sessionExpired: true },
      ),
    );
    if (!options.fenced?.includes(id)) {
      image = image.apply({
        type: "BrokerRegistrationChange",
        brokerId: id,
        brokerEpoch: image.brokers.get(id)!.brokerEpoch,
        fenced: false,
      });
    }
  }
  return image;
}

/** Adds topic `topicId` with the given partitions, written as Partition records. */
export function withTopic(
  image: MetadataImage,
  topicId: string,
  partitions: readonly {
    replicas: number[];
    isr: number[];
    leader: number;
    leaderRecoveryState?: 0 | 1;
  }[],
): MetadataImage {
  return image.applyAll([
    { type: "Topic", name: `t-${topicId}`, topicId, configs: {} },
    ...partitions.map((p, partitionId): MetadataRecord => ({
      type: "Partition",
      topicId,
      partitionId,
      leaderEpoch: 0,
      partitionEpoch: 0,
      ...p,
    })),
  ]);
}

/** The first I5 violation in `image` (DESIGN §10), or null. */
export function i5Violation(image: MetadataImage): string | null {
  for (const t of image.topicsById.values()) {
    for (const [i, p] of t.partitions.entries()) {
      if (p.leader === -1) continue;
      const b = image.brokers.get(p.leader);
      if (!p.isr.includes(p.leader)) return `${t.name}-${i}: leader ${p.leader} not in ISR`;
      if (!b) return `${t.name}-${i}: leader ${p.leader} not registered`;
      if (b.fenced) return `${t.name}-${i}: leader ${p.leader} is fenced`;
    }
  }
  return null;
}

/** One input to the simulated controller. */
export type ClusterEvent =
  | { kind: "register"; brokerId: number; restart: boolean }
  | { kind: "heartbeat"; brokerId: number; caughtUp: boolean; shutDown: boolean; stale: boolean }
  | { kind: "tick"; ms: number }
  | { kind: "connectionLost"; brokerId: number }
  | { kind: "createTopic"; name: string; partitions: number; rf: number }
  | { kind: "alterIsr"; pick: number; keep: number }
  | { kind: "preferred" }
  | { kind: "unregister"; brokerId: number };

const brokerId = fc.integer({ min: 1, max: 4 });

/** Random controller inputs, weighted towards heartbeats and time passing. */
export const clusterEvent: fc.Arbitrary<ClusterEvent> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant("register"), brokerId, restart: fc.boolean() }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("heartbeat"),
      brokerId,
      caughtUp: fc.integer({ min: 0, max: 3 }).map((n) => n > 0),
      shutDown: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      stale: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("tick"), ms: fc.integer({ min: 0, max: 2000 }) }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant("connectionLost"), brokerId }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("createTopic"),
      name: fc.constantFrom("a", "b", "c", "d", "e"),
      partitions: fc.integer({ min: 1, max: 4 }),
      rf: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("alterIsr"),
      pick: fc.nat(),
      keep: fc.nat(),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant("preferred") }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("unregister"), brokerId }), weight: 1 },
);

/** Brokers 1-3 register and catch up: the start of every random run. */
export const BOOTSTRAP: readonly ClusterEvent[] = [1, 2, 3].flatMap((brokerId): ClusterEvent[] => [
  { kind: "register", brokerId, restart: false },
  { kind: "heartbeat", brokerId, caughtUp: true, shutDown: false, stale: false },
]);

/** Random event sequences after {@linkcode BOOTSTRAP}. */
export const clusterEvents: fc.Arbitrary<ClusterEvent[]> = fc.array(clusterEvent, {
  minLength: 10,
  maxLength: 120,
}).map((events) => [...BOOTSTRAP, ...events]);

/** Controller state while driving events. */
export interface SimState {
  image: MetadataImage;
  tracker: BrokerHeartbeatTracker;
  nowMs: number;
  /** Every record proposed, in order. */
  log: MetadataRecord[];
  /** Incarnation counter per broker (a restart makes a new one). */
  incarnations: Map<number, number>;
}

/** Called with each image as the records of one decision are applied one by one. */
export type ImageCheck = (prev: MetadataImage, next: MetadataImage, record: MetadataRecord) => void;

function commit(state: SimState, records: readonly MetadataRecord[], check: ImageCheck): void {
  for (const r of records) {
    const next = state.image.apply(r);
    check(state.image, next, r);
    state.image = next;
    state.log.push(r);
  }
}

/** Drives `events` through the decision functions, checking every intermediate image. */
export function runEvents(
  events: readonly ClusterEvent[],
  check: ImageCheck,
  options: { uncleanLeaderElection?: boolean } = {},
): SimState {
  const state: SimState = {
    image: MetadataImage.EMPTY,
    tracker: BrokerHeartbeatTracker.start(0),
    nowMs: 0,
    log: [],
    incarnations: new Map(),
  };
  const ctx = imageContext();
  commit(state, [{ type: "Cluster", clusterId: "sim" }], check);
  for (const e of events) {
    switch (e.kind) {
      case "register": {
        const inc = (state.incarnations.get(e.brokerId) ?? 0) + (e.restart ? 1 : 0);
        state.incarnations.set(e.brokerId, inc);
        try {
          const records = planRegisterBroker(
            state.image,
            {
              brokerId: e.brokerId,
              incarnationId: `inc-${e.brokerId}-${inc}`,
              endpoints: [{ host: "127.0.0.1", port: 9000 + e.brokerId }],
              rack: null,
            },
            state.image.offset + 1,
            {
              sessionExpired: state.tracker.sessionExpired(e.brokerId, state.nowMs),
            },
          );
          commit(state, records, check);
          state.tracker = state.tracker.registered(e.brokerId, state.nowMs);
        } catch (err) {
          if (!(err instanceof TidelogError)) throw err;
          if (err.code !== ErrorCode.DUPLICATE_BROKER_REGISTRATION) throw err;
        }
        break;
      }
      case "heartbeat": {
        const reg = state.image.brokers.get(e.brokerId);
        if (!reg) break;
        const d = state.tracker.heartbeat(
          state.image,
          {
            brokerId: e.brokerId,
            brokerEpoch: e.stale ? reg.brokerEpoch - 1 : reg.brokerEpoch,
            currentMetadataOffset: e.caughtUp ? state.image.offset : reg.registrationOffset - 1,
            wantFence: false,
            wantShutDown: e.shutDown,
          },
          state.nowMs,
          options,
        );
        state.tracker = d.tracker;
        commit(state, d.records, check);
        break;
      }
      case "tick":
        state.nowMs += e.ms;
        break;
      case "connectionLost":
        state.tracker = state.tracker.connectionLost(e.brokerId, state.nowMs);
        break;
      case "createTopic":
        try {
          commit(
            state,
            planCreateTopic(state.image, {
              name: e.name,
              numPartitions: e.partitions,
              replicationFactor: e.rf,
              assignments: [],
              configs: [],
            }, ctx).records,
            check,
          );
        } catch (err) {
          if (!(err instanceof TidelogError)) throw err;
        }
        break;
      case "alterIsr": {
        const parts = [...state.image.topicsById.values()].flatMap((t) =>
          t.partitions.map((p, partitionId) => ({ t, p, partitionId }))
        ).filter((x) => x.p.leader !== -1);
        const target = parts[e.pick % Math.max(parts.length, 1)];
        if (!target) break;
        const { t, p, partitionId } = target;
        const others = p.replicas.filter((r, i) => r !== p.leader && (e.keep >> i) % 2 === 1);
        const res = planAlterPartition(state.image, {
          brokerId: p.leader,
          brokerEpoch: state.image.brokers.get(p.leader)!.brokerEpoch,
          topicId: t.topicId,
          partitionId,
          leaderEpoch: p.leaderEpoch,
          partitionEpoch: p.partitionEpoch,
          newIsr: [p.leader, ...others],
        });
        commit(state, res.records, check);
        break;
      }
      case "preferred":
        commit(state, planPreferredLeaders(state.image), check);
        break;
      case "unregister":
        if (state.image.brokers.get(e.brokerId)?.fenced) {
          commit(state, planUnregisterBroker(state.image, e.brokerId), check);
          state.tracker = state.tracker.forget(e.brokerId);
        }
        break;
    }
    // The shell runs the fencing check on every timer tick.
    commit(state, decideFencing(state.image, state.tracker, state.nowMs, options), check);
  }
  return state;
}
