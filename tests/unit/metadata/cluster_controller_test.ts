import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AlterPartitionRequest,
  type BrokerHeartbeat,
  BrokerHeartbeatTracker,
  decideFencing,
  type LeaderChangeReason,
  MetadataImage,
  type MetadataRecord,
  type PartitionChangeRecord,
  planAlterPartition,
  planLeaderChanges,
  planPreferredLeaders,
  planRegisterBroker,
  planUnregisterBroker,
} from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { TidelogError } from "../../../lib/util/errors.ts";
import { clusterEvents, i5Violation, runEvents, withBrokers, withTopic } from "./_cluster.ts";

type P = { replicas: number[]; isr: number[]; leader: number; leaderRecoveryState?: 0 | 1 };
type Change = Omit<PartitionChangeRecord, "type" | "topicId" | "partitionId">;

function strip(records: readonly MetadataRecord[]): Change[] {
  return records.map((r) => {
    assert.equal(r.type, "PartitionChange");
    const { type: _t, topicId: _id, partitionId: _p, ...rest } = r as PartitionChangeRecord;
    return rest;
  });
}

/** Brokers 1-4 registered; `fenced` ones fenced; topic T with one partition `p`. */
function cluster(p: P, fenced: number[] = []): MetadataImage {
  return withTopic(withBrokers(MetadataImage.EMPTY, [1, 2, 3, 4], { fenced }), "T", [p]);
}

Deno.test("planLeaderChanges() elects only from the live ISR, in replica order", async (t) => {
  const table: {
    name: string;
    p: P;
    fenced?: number[];
    reason: LeaderChangeReason;
    unclean?: boolean;
    want: Change | null;
  }[] = [
    {
      name: "fenced leader: first live ISR member in replica order leads, ISR shrinks",
      p: { replicas: [1, 2, 3], isr: [1, 3, 2], leader: 1 },
      reason: { kind: "brokerFenced", brokerId: 1 },
      want: { leader: 2, isr: [3, 2] },
    },
    {
      name: "fenced follower leaves the ISR, leader kept",
      p: { replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1 },
      reason: { kind: "brokerFenced", brokerId: 3 },
      want: { isr: [1, 2] },
    },
    {
      name: "broker outside the ISR: nothing",
      p: { replicas: [1, 2, 3], isr: [1, 2], leader: 1 },
      reason: { kind: "brokerFenced", brokerId: 3 },
      want: null,
    },
    {
      name: "last ISR member fenced: no leader, ISR keeps it",
      p: { replicas: [1, 2, 3], isr: [1], leader: 1 },
      reason: { kind: "brokerFenced", brokerId: 1 },
      want: { leader: -1 },
    },
    {
      name: "already-fenced ISR member is not elected",
      p: { replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1 },
      fenced: [2],
      reason: { kind: "brokerFenced", brokerId: 1 },
      want: { leader: 3, isr: [2, 3] },
    },
    {
      name: "live replica outside the ISR is not elected (clean)",
      p: { replicas: [1, 2], isr: [1], leader: 1 },
      reason: { kind: "brokerFenced", brokerId: 1 },
      want: { leader: -1 },
    },
    {
      name: "unclean: a live replica outside the ISR leads, ISR reset, RECOVERING",
      p: { replicas: [1, 2], isr: [1], leader: 1 },
      reason: { kind: "brokerFenced", brokerId: 1 },
      unclean: true,
      want: { leader: 2, isr: [2], leaderRecoveryState: 1 },
    },
    {
      name: "controlled shutdown moves leadership as fencing does",
      p: { replicas: [2, 1], isr: [2, 1], leader: 2 },
      reason: { kind: "brokerShutdown", brokerId: 2 },
      want: { leader: 1, isr: [1] },
    },
    {
      name: "unregistered broker leaves ISR and leadership",
      p: { replicas: [2, 1], isr: [2, 1], leader: 2 },
      reason: { kind: "brokerUnregistered", brokerId: 2 },
      want: { leader: 1, isr: [1] },
    },
    {
      name: "unfenced last ISR member leads again",
      p: { replicas: [1, 2], isr: [2], leader: -1 },
      fenced: [2],
      reason: { kind: "brokerUnfenced", brokerId: 2 },
      want: { leader: 2 },
    },
    {
      name: "unfenced broker outside the ISR does not lead (clean)",
      p: { replicas: [2, 3], isr: [2], leader: -1 },
      fenced: [2, 3],
      reason: { kind: "brokerUnfenced", brokerId: 3 },
      want: null,
    },
    {
      name: "unfenced broker outside the ISR leads when unclean",
      p: { replicas: [2, 3], isr: [2], leader: -1 },
      fenced: [2, 3],
      reason: { kind: "brokerUnfenced", brokerId: 3 },
      unclean: true,
      want: { leader: 3, isr: [3], leaderRecoveryState: 1 },
    },
    {
      name: "unfencing leaves led partitions alone",
      p: { replicas: [1, 2], isr: [1, 2], leader: 1 },
      reason: { kind: "brokerUnfenced", brokerId: 2 },
      want: null,
    },
  ];
  for (const c of table) {
    await t.step(c.name, () => {
      const image = cluster(c.p, c.fenced);
      const records = planLeaderChanges(image, c.reason, { uncleanLeaderElection: c.unclean });
      assert.deepEqual(strip(records), c.want ? [c.want] : []);
      // The changed partition never has a fenced or non-ISR leader afterwards (I5), the
      // removed broker is out, and a leader change bumps the leader epoch.
      let after = image.applyAll(records);
      if (c.reason.kind === "brokerUnfenced") {
        // The shell writes the unfencing record first, then these.
        const unfence: MetadataRecord = {
          type: "BrokerRegistrationChange",
          brokerId: c.reason.brokerId,
          brokerEpoch: image.brokers.get(c.reason.brokerId)!.brokerEpoch,
          fenced: false,
        };
        after = image.apply(unfence).applyAll(records);
      }
      if (c.reason.kind !== "brokerUnfenced") {
        const fenced = after.apply({
          type: "BrokerRegistrationChange",
          brokerId: c.reason.brokerId,
          brokerEpoch: after.brokers.get(c.reason.brokerId)!.brokerEpoch,
          fenced: true,
        });
        assert.equal(i5Violation(fenced), null);
      } else assert.equal(i5Violation(after), null);
      const before = image.partition({ topicId: "T", partitionId: 0 })!;
      const p = after.partition({ topicId: "T", partitionId: 0 })!;
      assert.equal(p.leaderEpoch, before.leaderEpoch + (p.leader !== before.leader ? 1 : 0));
      assert.equal(p.partitionEpoch, before.partitionEpoch + records.length);
      assert.ok(p.isr.length > 0, "ISR never empty");
    });
  }
});

Deno.test("planPreferredLeaders() returns leadership to the first replica when it can lead", async (t) => {
  const table: { name: string; p: P; fenced?: number[]; want: Change | null }[] = [
    {
      name: "first replica live and in ISR",
      p: { replicas: [1, 2], isr: [2, 1], leader: 2 },
      want: { leader: 1 },
    },
    { name: "already preferred", p: { replicas: [1, 2], isr: [1, 2], leader: 1 }, want: null },
    { name: "not in ISR", p: { replicas: [1, 2], isr: [2], leader: 2 }, want: null },
    { name: "fenced", p: { replicas: [1, 2], isr: [2, 1], leader: 2 }, fenced: [1], want: null },
    {
      name: "leaderless partition with the first replica in the ISR",
      p: { replicas: [1, 2], isr: [1], leader: -1 },
      want: { leader: 1 },
    },
    {
      name: "RECOVERING after unclean election",
      p: { replicas: [1, 2], isr: [2, 1], leader: 2, leaderRecoveryState: 1 },
      want: null,
    },
  ];
  for (const c of table) {
    await t.step(c.name, () => {
      const image = cluster(c.p, c.fenced);
      const records = planPreferredLeaders(image);
      assert.deepEqual(strip(records), c.want ? [c.want] : []);
      assert.equal(i5Violation(image.applyAll(records)), null);
    });
  }
});

Deno.test("planRegisterBroker() registers fenced and refuses a live duplicate", async (t) => {
  const base = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2]), "T", [
    { replicas: [1, 2], isr: [1, 2], leader: 1 },
  ]);
  const req = (incarnationId: string) => ({
    brokerId: 1,
    incarnationId,
    endpoints: [{ host: "h", port: 1 }],
    rack: "r1",
  });
  await t.step("new id: one fenced RegisterBroker with the given epoch", () => {
    const records = planRegisterBroker(base, { ...req("x"), brokerId: 3 }, 100, {
      sessionExpired: false,
    });
    assert.deepEqual(records, [{
      type: "RegisterBroker",
      brokerId: 3,
      incarnationId: "x",
      brokerEpoch: 100,
      endpoints: [{ host: "h", port: 1 }],
      rack: "r1",
      fenced: true,
    }]);
    const image = base.applyAll(records);
    assert.deepEqual(image.liveBrokers(), [1, 2]);
    assert.equal(image.brokers.get(3)!.registrationOffset, base.offset + 1);
  });
  await t.step("other incarnation with a valid session: DUPLICATE_BROKER_REGISTRATION", () => {
    assert.throws(
      () => planRegisterBroker(base, req("other"), 100, { sessionExpired: false }),
      (err) => err instanceof TidelogError && err.code === ErrorCode.DUPLICATE_BROKER_REGISTRATION,
    );
  });
  for (
    const [label, incarnation, expired] of [
      ["same incarnation (a retry)", "inc-1", false],
      ["other incarnation, session expired", "other", true],
    ] as const
  ) {
    await t.step(`${label}: replaces the registration, leadership moves first`, () => {
      const records = planRegisterBroker(base, req(incarnation), 100, { sessionExpired: expired });
      assert.deepEqual(records.map((r) => r.type), ["PartitionChange", "RegisterBroker"]);
      let image = base;
      for (const r of records) {
        image = image.apply(r);
        assert.equal(i5Violation(image), null);
      }
      const b = image.brokers.get(1)!;
      assert.deepEqual([b.incarnationId, b.brokerEpoch, b.fenced], [incarnation, 100, true]);
      const p = image.partition({ topicId: "T", partitionId: 0 })!;
      assert.deepEqual([p.leader, p.isr, p.leaderEpoch], [2, [2], 1]);
    });
  }
});

Deno.test("planUnregisterBroker() moves leadership away, then unregisters", () => {
  const image = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2]), "T", [
    { replicas: [1, 2], isr: [1, 2], leader: 1 },
  ]);
  const records = planUnregisterBroker(image, 1);
  assert.deepEqual(records.map((r) => r.type), ["PartitionChange", "UnregisterBroker"]);
  const after = image.applyAll(records);
  assert.equal(after.brokers.has(1), false);
  assert.equal(i5Violation(after), null);
  assert.throws(
    () => planUnregisterBroker(after, 1),
    (err) => err instanceof TidelogError && err.code === ErrorCode.BROKER_ID_NOT_REGISTERED,
  );
});

/** A timeline step: an input at `at`, then the brokers expected fenced after decideFencing. */
type Step =
  | { at: number; heartbeat: number[]; fenced: number[] }
  | { at: number; lost: number; fenced: number[] }
  | { at: number; restored: number; fenced: number[] }
  | { at: number; fenced: number[] };

Deno.test("decideFencing() fences silent brokers and lost connections on time", async (t) => {
  const table: { name: string; steps: Step[] }[] = [
    {
      name: "silent past the session timeout (1500 ms)",
      steps: [
        { at: 0, heartbeat: [1, 2, 3], fenced: [] },
        { at: 1000, heartbeat: [2, 3], fenced: [] },
        { at: 1500, fenced: [] },
        { at: 1501, fenced: [1] },
        { at: 2500, fenced: [1] },
        { at: 2501, fenced: [1, 2, 3] },
      ],
    },
    {
      name: "regular heartbeats keep a session",
      steps: [
        { at: 0, heartbeat: [1, 2, 3], fenced: [] },
        { at: 1400, heartbeat: [1, 2, 3], fenced: [] },
        { at: 2800, heartbeat: [1, 2, 3], fenced: [] },
        { at: 4200, fenced: [] },
      ],
    },
    {
      name: "connection lost and not back within the grace (200 ms)",
      steps: [
        { at: 0, heartbeat: [1, 2, 3], fenced: [] },
        { at: 100, lost: 2, fenced: [] },
        { at: 300, fenced: [] },
        { at: 301, fenced: [2] },
      ],
    },
    {
      name: "connection lost, heartbeat within the grace",
      steps: [
        { at: 0, heartbeat: [1, 2, 3], fenced: [] },
        { at: 100, lost: 2, fenced: [] },
        { at: 250, heartbeat: [2], fenced: [] },
        { at: 1000, fenced: [] },
      ],
    },
    {
      name: "connection lost, reconnected within the grace",
      steps: [
        { at: 0, heartbeat: [1, 2, 3], fenced: [] },
        { at: 100, lost: 2, fenced: [] },
        { at: 150, restored: 2, fenced: [] },
        { at: 1000, fenced: [] },
      ],
    },
    {
      name: "a second loss does not restart the grace",
      steps: [
        { at: 0, heartbeat: [1, 2, 3], fenced: [] },
        { at: 100, lost: 3, fenced: [] },
        { at: 250, lost: 3, fenced: [] },
        { at: 301, fenced: [3] },
      ],
    },
    {
      name: "a fenced broker back and caught up is unfenced",
      steps: [
        { at: 0, heartbeat: [1, 2, 3], fenced: [] },
        { at: 1000, heartbeat: [2, 3], fenced: [] },
        { at: 1501, fenced: [1] },
        { at: 1600, heartbeat: [1], fenced: [] },
      ],
    },
    {
      name: "a new controller gives unheard brokers a fresh session from its start",
      steps: [{ at: 1500, fenced: [] }, { at: 1501, fenced: [1, 2, 3] }],
    },
  ];
  for (const c of table) {
    await t.step(c.name, () => {
      // Brokers 1-3 registered and unfenced; partitions led by each, RF 3.
      let image = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2, 3]), "T", [
        { replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1 },
        { replicas: [2, 3, 1], isr: [2, 3, 1], leader: 2 },
        { replicas: [3, 1, 2], isr: [3, 1, 2], leader: 3 },
      ]);
      let tracker = BrokerHeartbeatTracker.start(0);
      for (const step of c.steps) {
        if ("heartbeat" in step) {
          for (const id of step.heartbeat) {
            const d = tracker.heartbeat(image, {
              brokerId: id,
              brokerEpoch: image.brokers.get(id)!.brokerEpoch,
              currentMetadataOffset: image.offset,
              wantFence: false,
              wantShutDown: false,
            }, step.at);
            assert.equal(d.reply.errorCode, ErrorCode.NONE);
            assert.equal(d.reply.isFenced, false);
            tracker = d.tracker;
            image = image.applyAll(d.records);
          }
        } else if ("lost" in step) tracker = tracker.connectionLost(step.lost, step.at);
        else if ("restored" in step) tracker = tracker.connectionRestored(step.restored);
        for (const r of decideFencing(image, tracker, step.at)) {
          image = image.apply(r);
          assert.equal(i5Violation(image), null, `after ${JSON.stringify(r)}`);
        }
        const fenced = [...image.brokers.values()].filter((b) => b.fenced).map((b) => b.brokerId);
        assert.deepEqual(fenced, step.fenced, `at ${step.at}`);
        for (const id of fenced) assert.deepEqual(image.partitionsLedBy(id), []);
      }
    });
  }
});

Deno.test("decideFencing() with every broker gone leaves partitions leaderless with their last ISR member", () => {
  let image = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2]), "T", [
    { replicas: [1, 2], isr: [1, 2], leader: 1 },
  ]);
  image = image.applyAll(decideFencing(image, BrokerHeartbeatTracker.start(0), 5000));
  const p = image.partition({ topicId: "T", partitionId: 0 })!;
  // Broker 1 fenced first: 2 leads (epoch 1), then 2 fenced: no leader (epoch 2), ISR [2].
  assert.deepEqual([p.leader, p.isr, p.leaderEpoch, p.partitionEpoch], [-1, [2], 2, 2]);
  assert.equal(image.liveBrokers().length, 0);
});

/**
 * One moment of a controller that runs at `at` (it ticks; a gap over half a session,
 * 750 ms, between two moments is a stall), then takes the inputs and fences.
 */
interface LivenessStep {
  at: number;
  heartbeat?: number[];
  /** A heartbeat arrives and is held (it waits for records). */
  received?: number;
  /** The held heartbeat is answered. */
  answered?: number;
  lost?: number;
  /** Every broker fenced after this step's fencing check. */
  fenced?: number[];
}

/** Moments every 100 ms from `from` to `to` (both included), with no input. */
function running(from: number, to: number): LivenessStep[] {
  const out: LivenessStep[] = [];
  for (let at = from; at <= to; at += 100) out.push({ at });
  return out;
}

Deno.test("BrokerHeartbeatTracker: silence counts only while the controller could hear", async (t) => {
  const table: { name: string; steps: LivenessStep[] }[] = [
    {
      name: "a stall over half a session gives every broker a fresh session from the resume",
      steps: [
        { at: 0, heartbeat: [1, 2, 3] },
        ...running(100, 500),
        { at: 2500, fenced: [] }, // silent 2500 ms, but the controller ran for none of it
        ...running(2600, 2900),
        { at: 3000, heartbeat: [1, 2] },
        ...running(3100, 3900),
        { at: 3500, heartbeat: [1, 2] },
        { at: 4000, fenced: [] },
        { at: 4001, fenced: [3] },
      ],
    },
    {
      name: "gaps up to half a session are no stall",
      steps: [
        { at: 0, heartbeat: [1, 2, 3] },
        { at: 700 },
        { at: 1400, fenced: [] },
        { at: 1501, fenced: [1, 2, 3] },
      ],
    },
    {
      name: "a connection lost before a stall gets its grace from the resume",
      steps: [
        { at: 0, heartbeat: [1, 2, 3] },
        { at: 100, lost: 2 },
        { at: 1000, fenced: [] },
        ...running(1100, 1200),
        { at: 1201, fenced: [2] },
      ],
    },
    {
      name: "a held heartbeat keeps its broker's session until it is answered",
      steps: [
        { at: 0, heartbeat: [1, 2, 3] },
        { at: 100, received: 3 },
        ...running(200, 2900),
        { at: 3000, answered: 3, fenced: [1, 2] },
        ...running(3100, 4500),
        { at: 4500, fenced: [1, 2] },
        { at: 4501, fenced: [1, 2, 3] },
      ],
    },
    {
      name: "a held heartbeat does not outlive its broker's connection",
      steps: [
        { at: 0, heartbeat: [1, 2, 3] },
        { at: 100, received: 3 },
        { at: 500, lost: 3 },
        ...running(600, 700),
        { at: 701, fenced: [3] },
      ],
    },
    {
      name: "the broker whose heartbeat was held is silent from the answer on",
      steps: [
        { at: 0, heartbeat: [1, 2, 3] },
        ...running(100, 1000),
        { at: 1000, received: 2 },
        ...running(1100, 1400),
        { at: 1500, fenced: [] },
        { at: 1501, fenced: [1, 3] },
        { at: 1600, answered: 2 },
        ...running(1700, 3000),
        { at: 3100, fenced: [1, 3] },
        { at: 3101, fenced: [1, 2, 3] },
      ],
    },
  ];
  for (const c of table) {
    await t.step(c.name, () => {
      let image = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2, 3]), "T", [
        { replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1 },
      ]);
      const hb = (id: number): BrokerHeartbeat => ({
        brokerId: id,
        brokerEpoch: image.brokers.get(id)!.brokerEpoch,
        currentMetadataOffset: image.offset,
        wantFence: false,
        wantShutDown: false,
      });
      let tracker = BrokerHeartbeatTracker.start(0);
      for (const step of [...c.steps].sort((a, b) => a.at - b.at)) {
        tracker = tracker.tick(step.at);
        for (const id of step.heartbeat ?? []) {
          const d = tracker.heartbeat(image, hb(id), step.at);
          tracker = d.tracker;
          image = image.applyAll(d.records);
        }
        if (step.received !== undefined) {
          tracker = tracker.heartbeatReceived(image, hb(step.received), step.at);
        }
        if (step.answered !== undefined) {
          tracker = tracker.heartbeatAnswered(step.answered, step.at);
        }
        if (step.lost !== undefined) tracker = tracker.connectionLost(step.lost, step.at);
        image = image.applyAll(decideFencing(image, tracker, step.at));
        if (step.fenced !== undefined) {
          const fenced = [...image.brokers.values()].filter((b) => b.fenced).map((b) => b.brokerId);
          assert.deepEqual(fenced, step.fenced, `at ${step.at}`);
        }
      }
    });
  }
});

Deno.test("BrokerHeartbeatTracker.tick() marks a resume only after a gap over controllerStallMs", () => {
  const t0 = BrokerHeartbeatTracker.start(1000);
  assert.deepEqual([t0.lastRunMs, t0.resumedMs], [1000, 1000]);
  const t1 = t0.tick(1750);
  assert.deepEqual([t1.lastRunMs, t1.resumedMs], [1750, 1000], "750 ms is no stall");
  const t2 = t1.tick(2501);
  assert.deepEqual([t2.lastRunMs, t2.resumedMs], [2501, 2501], "751 ms is");
  assert.equal(t2.sessions, t1.sessions, "sessions are kept; only their start moves");
  const options = { sessionTimeoutMs: 4000 };
  assert.equal(t1.tick(3500, options).resumedMs, 1000, "half of a longer session");
  assert.equal(t1.tick(3800, options).resumedMs, 3800);
  assert.equal(t1.tick(1900, { controllerStallMs: 100 }).resumedMs, 1900);
});

Deno.test("BrokerHeartbeatTracker.heartbeatReceived()/heartbeatAnswered() count held heartbeats of the registration", () => {
  const image = withBrokers(MetadataImage.EMPTY, [1, 2]);
  const epoch = image.brokers.get(1)!.brokerEpoch;
  const hb = (brokerEpoch: number): BrokerHeartbeat => ({
    brokerId: 1,
    brokerEpoch,
    currentMetadataOffset: image.offset,
    wantFence: false,
    wantShutDown: false,
  });
  const t0 = BrokerHeartbeatTracker.start(0).connectionLost(1, 50);
  assert.equal(t0.heartbeatReceived(image, hb(epoch - 1), 100), t0, "a stale epoch: nothing");
  assert.equal(t0.heartbeatAnswered(1, 100), t0, "nothing held: nothing");
  const t1 = t0.heartbeatReceived(image, hb(epoch), 100).heartbeatReceived(image, hb(epoch), 200);
  assert.deepEqual(
    [t1.session(1).lastContactMs, t1.session(1).connectionLostMs, t1.session(1).heartbeatsInFlight],
    [200, null, 2],
  );
  // Planning it later touches the session at planning time; the count stays.
  const planned = t1.heartbeat(image, hb(epoch), 900).tracker;
  assert.deepEqual([planned.session(1).lastContactMs, planned.session(1).heartbeatsInFlight], [
    900,
    2,
  ]);
  const t2 = planned.heartbeatAnswered(1, 1000).heartbeatAnswered(1, 800);
  assert.deepEqual([t2.session(1).lastContactMs, t2.session(1).heartbeatsInFlight], [1000, 0]);
  assert.equal(t2.heartbeatAnswered(1, 5000), t2);
  assert.equal(t1.registered(1, 300).session(1).heartbeatsInFlight, 2, "re-registration keeps it");
});

Deno.test("BrokerHeartbeatTracker.heartbeat() answers with Kafka's BrokerHeartbeat semantics", async (t) => {
  // Broker 1 registered at offset `reg`; brokers 2, 3 unfenced; broker 1 leads T-0.
  const fresh = () => {
    let image = withBrokers(MetadataImage.EMPTY, [2, 3]);
    image = withBrokers(image, [1], { fenced: [1] });
    return image;
  };
  const leading = () => {
    const image = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2, 3]), "T", [
      { replicas: [1, 2], isr: [1, 2], leader: 1 },
    ]);
    return image;
  };
  const hb = (image: MetadataImage, over: Partial<BrokerHeartbeat> = {}): BrokerHeartbeat => ({
    brokerId: 1,
    brokerEpoch: image.brokers.get(1)!.brokerEpoch,
    currentMetadataOffset: image.offset,
    wantFence: false,
    wantShutDown: false,
    ...over,
  });
  const table: {
    name: string;
    image: () => MetadataImage;
    hb: (image: MetadataImage) => BrokerHeartbeat;
    reply: [code: number, caughtUp: boolean, fenced: boolean, shutDown: boolean];
    records: string[];
    fencedAfter: boolean;
  }[] = [
    {
      name: "stale epoch",
      image: leading,
      hb: (i) => hb(i, { brokerEpoch: 12345 }),
      reply: [ErrorCode.STALE_BROKER_EPOCH, false, true, false],
      records: [],
      fencedAfter: false,
    },
    {
      name: "unknown broker",
      image: leading,
      hb: (i) => hb(i, { brokerId: 9 }),
      reply: [ErrorCode.STALE_BROKER_EPOCH, false, true, false],
      records: [],
      fencedAfter: false,
    },
    {
      name: "fenced, not caught up: stays fenced",
      image: fresh,
      hb: (i) => hb(i, { currentMetadataOffset: i.brokers.get(1)!.registrationOffset - 1 }),
      reply: [ErrorCode.NONE, false, true, false],
      records: [],
      fencedAfter: true,
    },
    {
      name: "fenced, caught up to its registration: unfenced",
      image: fresh,
      hb: (i) => hb(i, { currentMetadataOffset: i.brokers.get(1)!.registrationOffset }),
      reply: [ErrorCode.NONE, true, false, false],
      records: ["BrokerRegistrationChange"],
      fencedAfter: false,
    },
    {
      name: "fenced, caught up, wants to stay fenced",
      image: fresh,
      hb: (i) => hb(i, { wantFence: true }),
      reply: [ErrorCode.NONE, true, true, false],
      records: [],
      fencedAfter: true,
    },
    {
      name: "fenced, wants to shut down: shut down now",
      image: fresh,
      hb: (i) => hb(i, { wantShutDown: true }),
      reply: [ErrorCode.NONE, true, true, true],
      records: [],
      fencedAfter: true,
    },
    {
      name: "unfenced, wants to be fenced: fenced, leadership moves first",
      image: leading,
      hb: (i) => hb(i, { wantFence: true }),
      reply: [ErrorCode.NONE, true, true, false],
      records: ["PartitionChange", "BrokerRegistrationChange"],
      fencedAfter: true,
    },
    {
      name: "unfenced leader wants to shut down: controlled shutdown, leadership moves",
      image: leading,
      hb: (i) => hb(i, { wantShutDown: true }),
      reply: [ErrorCode.NONE, true, false, false],
      records: ["BrokerRegistrationChange", "PartitionChange"],
      fencedAfter: false,
    },
    {
      name: "unfenced, leads nothing, wants to shut down: fenced, shut down now",
      image: fresh,
      hb: (i) =>
        hb(i, { brokerId: 2, brokerEpoch: i.brokers.get(2)!.brokerEpoch, wantShutDown: true }),
      reply: [ErrorCode.NONE, true, true, true],
      records: ["BrokerRegistrationChange"],
      fencedAfter: true, // broker 1 is untouched: still fenced
    },
  ];
  for (const c of table) {
    await t.step(c.name, () => {
      const image = c.image();
      const before = image.brokers.get(1)!.fenced;
      const d = BrokerHeartbeatTracker.start(0).heartbeat(image, c.hb(image), 10);
      const r = d.reply;
      assert.deepEqual([r.errorCode, r.isCaughtUp, r.isFenced, r.shouldShutDown], c.reply);
      assert.deepEqual(d.records.map((x) => x.type), c.records);
      let after = image;
      for (const rec of d.records) {
        after = after.apply(rec);
        assert.equal(i5Violation(after), null);
      }
      assert.equal(after.brokers.get(1)!.fenced, c.fencedAfter, `was ${before}`);
    });
  }
});

Deno.test("BrokerHeartbeatTracker: controlled shutdown completes once leadership has moved and others caught up", () => {
  let image = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2]), "T", [
    { replicas: [1, 2], isr: [1, 2], leader: 1 },
  ]);
  let tracker = BrokerHeartbeatTracker.start(0);
  const beat = (id: number, at: number, offset: number, wantShutDown = false) => {
    const d = tracker.heartbeat(image, {
      brokerId: id,
      brokerEpoch: image.brokers.get(id)!.brokerEpoch,
      currentMetadataOffset: offset,
      wantFence: false,
      wantShutDown,
    }, at);
    tracker = d.tracker;
    image = image.applyAll(d.records);
    return d.reply;
  };
  const start = image.offset;
  beat(2, 0, start);
  let reply = beat(1, 0, start, true);
  assert.deepEqual([reply.inControlledShutdown, reply.shouldShutDown], [true, false]);
  assert.equal(image.brokers.get(1)!.inControlledShutdown, true);
  assert.deepEqual(image.partitionsLedBy(1), []);
  assert.deepEqual(image.partition({ topicId: "T", partitionId: 0 })!.isr, [2]);
  // Broker 2 has not yet seen the new leadership: broker 1 must wait.
  reply = beat(1, 250, image.offset, true);
  assert.deepEqual([reply.inControlledShutdown, reply.shouldShutDown], [true, false]);
  beat(2, 250, image.offset);
  const midShutdown = image;
  reply = beat(1, 500, image.offset, true);
  assert.deepEqual([reply.shouldShutDown, reply.isFenced], [true, true]);
  assert.equal(image.brokers.get(1)!.fenced, true);
  assert.equal(i5Violation(image), null);

  // A controller taking over mid-shutdown waits until every live broker reports its offset.
  image = midShutdown;
  tracker = BrokerHeartbeatTracker.start(1000);
  reply = beat(1, 1000, image.offset, true);
  assert.deepEqual([reply.inControlledShutdown, reply.shouldShutDown], [true, false]);
  beat(2, 1000, image.offset);
  reply = beat(1, 1250, image.offset, true);
  assert.deepEqual([reply.shouldShutDown, reply.isFenced], [true, true]);
});

Deno.test("planAlterPartition() applies a leader's ISR change or returns Kafka's error", async (t) => {
  // T-0: replicas [1,2,3], ISR [1,2], leader 1 (epoch 0/0); broker 4 fenced, 3 live.
  const base = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2, 3, 4], { fenced: [4] }), "T", [
    { replicas: [1, 2, 3, 4], isr: [1, 2], leader: 1 },
  ]);
  const shutting = base.apply({
    type: "BrokerRegistrationChange",
    brokerId: 3,
    brokerEpoch: base.brokers.get(3)!.brokerEpoch,
    inControlledShutdown: true,
  });
  const ok: AlterPartitionRequest = {
    brokerId: 1,
    brokerEpoch: base.brokers.get(1)!.brokerEpoch,
    topicId: "T",
    partitionId: 0,
    leaderEpoch: 0,
    partitionEpoch: 0,
    newIsr: [1, 2, 3],
  };
  const table: [string, Partial<AlterPartitionRequest>, number, MetadataImage?][] = [
    ["expand", {}, ErrorCode.NONE],
    ["shrink", { newIsr: [1] }, ErrorCode.NONE],
    ["no change", { newIsr: [1, 2] }, ErrorCode.NONE],
    ["stale broker epoch", { brokerEpoch: 0 }, ErrorCode.STALE_BROKER_EPOCH],
    ["unknown topic id", { topicId: "X" }, ErrorCode.UNKNOWN_TOPIC_ID],
    ["unknown partition", { partitionId: 5 }, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ["old leader epoch", { leaderEpoch: -1 }, ErrorCode.FENCED_LEADER_EPOCH],
    ["newer leader epoch", { leaderEpoch: 1 }, ErrorCode.NOT_CONTROLLER],
    [
      "sender is not the leader",
      { brokerId: 2, brokerEpoch: base.brokers.get(2)!.brokerEpoch },
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
    ],
    ["old partition epoch", { partitionEpoch: -1 }, ErrorCode.INVALID_UPDATE_VERSION],
    ["newer partition epoch", { partitionEpoch: 1 }, ErrorCode.NOT_CONTROLLER],
    ["empty ISR", { newIsr: [] }, ErrorCode.INVALID_REQUEST],
    ["ISR without the leader", { newIsr: [2] }, ErrorCode.INVALID_REQUEST],
    ["non-replica in ISR", { newIsr: [1, 9] }, ErrorCode.INVALID_REQUEST],
    ["duplicate in ISR", { newIsr: [1, 2, 2] }, ErrorCode.INVALID_REQUEST],
    ["fenced member added", { newIsr: [1, 2, 4] }, ErrorCode.INELIGIBLE_REPLICA],
    [
      "member in controlled shutdown added",
      { newIsr: [1, 2, 3] },
      ErrorCode.INELIGIBLE_REPLICA,
      shutting,
    ],
    ["member in controlled shutdown kept", { newIsr: [1, 2] }, ErrorCode.NONE, shutting],
    ["to RECOVERING", { leaderRecoveryState: 1 }, ErrorCode.INVALID_REQUEST],
  ];
  for (const [name, over, code, image = base] of table) {
    await t.step(name, () => {
      const res = planAlterPartition(image, { ...ok, ...over });
      assert.equal(res.errorCode, code);
      if (code !== ErrorCode.NONE) {
        assert.deepEqual(res.records, []);
        assert.equal(res.partition, null);
        return;
      }
      const after = image.applyAll(res.records);
      const p = after.partition({ topicId: "T", partitionId: 0 })!;
      assert.deepEqual(res.partition, p);
      assert.deepEqual(p.isr, over.newIsr ?? ok.newIsr);
      assert.equal(p.leaderEpoch, 0, "an ISR change keeps the leader epoch");
      assert.equal(p.partitionEpoch, res.records.length);
    });
  }
  await t.step("RECOVERING leader: ISR of one, then RECOVERED", () => {
    const image = withTopic(withBrokers(MetadataImage.EMPTY, [1, 2]), "R", [
      { replicas: [1, 2], isr: [1], leader: 1, leaderRecoveryState: 1 },
    ]);
    const req = { ...ok, topicId: "R", brokerEpoch: image.brokers.get(1)!.brokerEpoch };
    assert.equal(planAlterPartition(image, { ...req, newIsr: [1, 2] }).errorCode, 42);
    const res = planAlterPartition(image, { ...req, newIsr: [1], leaderRecoveryState: 0 });
    assert.equal(res.errorCode, ErrorCode.NONE);
    assert.deepEqual(strip(res.records), [{ leaderRecoveryState: 0 }]);
    // Kafka's rule: the recovery may end in the same change that grows the ISR.
    const grown = planAlterPartition(image, { ...req, newIsr: [1, 2], leaderRecoveryState: 0 });
    assert.equal(grown.errorCode, ErrorCode.NONE);
    assert.deepEqual(strip(grown.records), [{ isr: [1, 2], leaderRecoveryState: 0 }]);
  });
});

Deno.test("cluster controller: random events keep I5 and monotonic epochs (property)", () => {
  for (const unclean of [false, true]) {
    fc.assert(
      fc.property(clusterEvents, (events) => {
        const state = runEvents(events, (prev, next, record) => {
          const v = i5Violation(next);
          assert.equal(v, null, `${v} after ${JSON.stringify(record)}`);
          for (const [topicId, t] of next.topicsById) {
            t.partitions.forEach((p, i) => {
              const before = prev.topicsById.get(topicId)?.partitions[i];
              if (!before) return;
              assert.ok(p.leaderEpoch >= before.leaderEpoch, "leader epoch went back");
              assert.ok(p.partitionEpoch >= before.partitionEpoch, "partition epoch went back");
              if (p.leader !== before.leader) {
                assert.equal(p.leaderEpoch, before.leaderEpoch + 1, "leader change without bump");
              }
              if (!unclean && p.leader !== -1 && p.leader !== before.leader) {
                assert.ok(before.isr.includes(p.leader), "clean leader came from the old ISR");
              }
              assert.ok(p.isr.length > 0, "empty ISR");
              assert.ok(p.isr.every((r) => p.replicas.includes(r)), "ISR outside replicas");
            });
          }
        }, { uncleanLeaderElection: unclean });
        // Decisions are a function of their inputs: replaying the log gives the same image.
        assert.deepEqual(
          MetadataImage.EMPTY.applyAll(state.log).toSnapshot(),
          state.image.toSnapshot(),
        );
      }),
      { numRuns: 300 },
    );
  }
});
