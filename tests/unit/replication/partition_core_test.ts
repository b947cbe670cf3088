/**
 * The pure replication core (lib/replication/partition_core.ts): events in, effects out.
 * The ISR-change cases follow Kafka's Partition.handleAlterPartitionUpdate/Error and
 * issue 10 §1.1 (the HW must never pass a replica the controller may have committed into
 * the ISR), §1.3 (KIP-704 recovery) and §1.5 (KIP-903 re-registered followers).
 */
import assert from "node:assert/strict";
import type { PartitionState } from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import {
  type ImageContext,
  type IsrProposal,
  type LogOffsets,
  PartitionCore,
} from "../../../lib/replication/partition_core.ts";

const ME = 1;
const LAG = 1000;

function state(over: Partial<PartitionState> = {}): PartitionState {
  return {
    replicas: [1, 2, 3],
    isr: [1, 2],
    leader: ME,
    leaderEpoch: 5,
    partitionEpoch: 10,
    leaderRecoveryState: 0,
    ...over,
  };
}

/** A leader core with a log of `end` offsets, all durable, and a clock. */
function leader(st: PartitionState = state(), end = 100) {
  const core = new PartitionCore({ nodeId: ME, replicaLagTimeMaxMs: LAG }, {
    leaderEpoch: 0,
    hw: 0,
  });
  let now = 1_000;
  const log: { -readonly [K in keyof LogOffsets]: LogOffsets[K] } = {
    logStart: 0,
    logEnd: end,
    durableEnd: end,
  };
  const epochs = new Map([[1, 101], [2, 102], [3, 103]]);
  const ctx = (): ImageContext => ({
    nowMs: now,
    log,
    holdLeadership: false,
    brokerEpoch: (id) => epochs.get(id) ?? -1,
    eligible: () => true,
  });
  const out = core.applyImage(st, ctx());
  assert.equal(out.role?.role, "leader");
  return {
    core,
    log,
    epochs,
    ctx,
    advance: (ms: number) => (now += ms),
    now: () => now,
    /** Both ISR followers report `offset`; returns the last output. */
    fetch: (id: number, offset: number) => core.followerFetched(id, offset, now, log),
  };
}

/** Follower 3 catches up; the core proposes ISR {1,2,3}; returns the proposal. */
function expandTo3(t: ReturnType<typeof leader>): IsrProposal {
  t.fetch(2, 100);
  const out = t.fetch(3, 100);
  assert.deepEqual(out.propose?.newIsr, [1, 2, 3]);
  assert.equal(out.propose?.partitionEpoch, 10);
  return out.propose!;
}

Deno.test("PartitionCore: the HW counts a pending ISR addition until its outcome is known", async (t) => {
  await t.step(
    "INVALID_UPDATE_VERSION (e.g. a retry of a committed change) keeps it pending",
    () => {
      const c = leader();
      const sent = expandTo3(c);
      c.core.answered(
        sent,
        { kind: "answered", errorCode: ErrorCode.INVALID_UPDATE_VERSION },
        c.now(),
        c.log,
      );
      assert.deepEqual(c.core.maximalIsr, [1, 2, 3]);
      // Follower 3 falls back (it was slow to fetch again): the HW must wait for it.
      c.log.logEnd = c.log.durableEnd = 150;
      c.fetch(2, 150);
      c.fetch(3, 120);
      assert.equal(c.core.highWatermark, 120);
      assert.equal(c.core.tick(c.now() + 10_000, c.log).propose, undefined, "no new proposal");
    },
  );

  await t.step("an answer of unknown outcome re-sends the same proposal, never a new one", () => {
    const c = leader();
    const sent = expandTo3(c);
    c.core.answered(sent, { kind: "unknown", reason: "timeout" }, c.now(), c.log);
    assert.equal(c.core.tick(c.now(), c.log).propose, undefined, "backing off");
    c.advance(5000);
    // Meanwhile follower 2 lags past the lag time: a fresh proposal would shrink it.
    const out = c.core.tick(c.now(), c.log);
    assert.equal(out.propose, sent, "the same request again");
    assert.deepEqual(c.core.maximalIsr, [1, 2, 3]);
  });

  await t.step("NONE with the new state adopts the ISR and partition epoch at once", () => {
    const c = leader();
    const sent = expandTo3(c);
    c.core.answered(
      sent,
      {
        kind: "answered",
        errorCode: ErrorCode.NONE,
        state: { leaderEpoch: 5, partitionEpoch: 11, isr: [1, 2, 3] },
      },
      c.now(),
      c.log,
    );
    assert.deepEqual(c.core.isr, [1, 2, 3]);
    assert.equal(c.core.partitionEpoch, 11);
    assert.equal(c.core.pending, null);
    // The image, lagging, still says epoch 10 with ISR {1,2}: ignored.
    c.core.applyImage(state(), c.ctx());
    assert.deepEqual(c.core.isr, [1, 2, 3]);
    assert.equal(c.core.partitionEpoch, 11);
  });

  await t.step("the image showing a newer partition epoch resolves the pending change", () => {
    const c = leader();
    expandTo3(c);
    c.core.applyImage(state({ isr: [1, 2, 3], partitionEpoch: 11 }), c.ctx());
    assert.equal(c.core.pending, null);
    assert.deepEqual(c.core.isr, [1, 2, 3]);
  });

  await t.step("the image at the same partition epoch leaves it pending", () => {
    const c = leader();
    expandTo3(c);
    c.core.applyImage(state(), c.ctx());
    assert.notEqual(c.core.pending, null);
    assert.deepEqual(c.core.maximalIsr, [1, 2, 3]);
  });

  await t.step("INELIGIBLE_REPLICA means not applied: back to the committed ISR", () => {
    const c = leader();
    const sent = expandTo3(c);
    c.core.answered(
      sent,
      { kind: "answered", errorCode: ErrorCode.INELIGIBLE_REPLICA },
      c.now(),
      c.log,
    );
    assert.equal(c.core.pending, null);
    assert.deepEqual(c.core.maximalIsr, [1, 2]);
  });

  await t.step("a pending shrink keeps counting the replicas it removes", () => {
    const c = leader(state({ isr: [1, 2, 3] }));
    c.fetch(2, 100);
    c.fetch(3, 40);
    c.advance(LAG + 1);
    c.fetch(2, 100);
    const out = c.core.tick(c.now(), c.log);
    assert.deepEqual(out.propose?.newIsr, [1, 2]);
    assert.deepEqual(c.core.maximalIsr, [1, 2, 3]);
    assert.equal(c.core.highWatermark, 40, "3 still holds the HW back");
  });
});

Deno.test("PartitionCore: FENCED_LEADER_EPOCH stops leading at once, until a newer epoch", () => {
  const c = leader();
  const sent = expandTo3(c);
  const out = c.core.answered(
    sent,
    { kind: "answered", errorCode: ErrorCode.FENCED_LEADER_EPOCH },
    c.now(),
    c.log,
  );
  assert.equal(out.failAcks, ErrorCode.NOT_LEADER_OR_FOLLOWER);
  assert.equal(c.core.role, "none");
  // A lagging image still naming this node leader in epoch 5 does not bring it back.
  assert.equal(c.core.applyImage(state(), c.ctx()).role?.role ?? c.core.role, "none");
  assert.equal(c.core.role, "none");
  const again = c.core.applyImage(state({ leaderEpoch: 6, partitionEpoch: 12 }), c.ctx());
  assert.equal(again.role?.role, "leader");
});

Deno.test("PartitionCore: a leader elected uncleanly reports RECOVERED first, then the ISR grows (KIP-704)", () => {
  const c = leader(state({ isr: [1], leaderRecoveryState: 1 }));
  const first = c.core.tick(c.now(), c.log).propose ?? c.core.pending;
  assert.deepEqual(first?.newIsr, [1]);
  assert.equal(first?.leaderRecoveryState, 0);
  // Followers catch up meanwhile: nothing else is proposed before the report commits.
  assert.equal(c.fetch(2, 100).propose, undefined);
  c.core.answered(
    first!,
    {
      kind: "answered",
      errorCode: ErrorCode.NONE,
      state: { leaderEpoch: 5, partitionEpoch: 11, isr: [1], leaderRecoveryState: 0 },
    },
    c.now(),
    c.log,
  );
  assert.equal(c.core.leaderRecoveryState, 0);
  const next = c.fetch(2, 100).propose;
  assert.deepEqual(next?.newIsr, [1, 2]);
});

Deno.test("PartitionCore: a follower that re-registered starts with unknown fetch state (KIP-903)", () => {
  const c = leader();
  c.fetch(2, 100);
  c.fetch(3, 100);
  // The pending expansion is answered; then broker 3 re-registers (a new incarnation).
  const sent = c.core.pending!;
  c.core.answered(
    sent,
    {
      kind: "answered",
      errorCode: ErrorCode.NONE,
      state: { leaderEpoch: 5, partitionEpoch: 11, isr: [1, 2, 3] },
    },
    c.now(),
    c.log,
  );
  c.epochs.set(3, 999);
  c.core.applyImage(state({ isr: [1, 2], partitionEpoch: 12 }), c.ctx());
  assert.equal(c.core.followers.get(3)?.logEndOffset, -1, "its old fetch offset is forgotten");
  assert.equal(c.core.tick(c.now(), c.log).propose, undefined, "not re-added on stale state");
  c.fetch(3, 100);
  assert.deepEqual(c.core.pending?.newIsr, [1, 2, 3], "re-added once it fetches again");
});

Deno.test("PartitionCore: a follower's HW is the leader's, capped at its log end", () => {
  const core = new PartitionCore({ nodeId: 2, replicaLagTimeMaxMs: LAG }, {
    leaderEpoch: 0,
    hw: 0,
  });
  const log = { logStart: 0, logEnd: 50, durableEnd: 50 };
  const out = core.applyImage(state({ leader: 1 }), {
    nowMs: 0,
    log,
    holdLeadership: false,
    brokerEpoch: () => 1,
    eligible: () => true,
  });
  assert.deepEqual(out.role, { role: "follower", leader: 1, leaderEpoch: 5 });
  assert.equal(core.setFollowerHighWatermark(80, log), true);
  assert.equal(core.highWatermark, 50);
  core.clampHighWatermark({ ...log, logEnd: 30 });
  assert.equal(core.highWatermark, 30);
});

Deno.test("PartitionCore: a pause in leading (controller quorum lost) keeps an unresolved ISR addition", () => {
  // Found by the cluster simulation (seed 199): the expansion request was still in flight
  // when the leader stopped leading for a moment; the controller committed it after the
  // leader had led again and forgotten it, so its HW passed the new member.
  const c = leader();
  const sent = expandTo3(c);
  const held = c.core.applyImage(state(), { ...c.ctx(), holdLeadership: true });
  assert.equal(held.role?.role, "none");
  const back = c.core.applyImage(state(), c.ctx());
  assert.equal(back.role?.role, "leader");
  assert.deepEqual(c.core.maximalIsr, [1, 2, 3], "still counted in the HW");
  assert.equal(back.propose, sent, "sent again to learn its fate");
  // An image showing a newer partition epoch resolves it as before.
  c.core.applyImage(state({ isr: [1, 2, 3], partitionEpoch: 11 }), c.ctx());
  assert.equal(c.core.pending, null);
});
