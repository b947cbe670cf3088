import assert from "node:assert/strict";
import { ApiKey, ErrorCode } from "../../../lib/protocol/mod.ts";
import { Harness, subscription } from "./_harness.ts";

function state(h: Harness, groupId = "g"): string | undefined {
  return h.core.group(groupId)?.state;
}

function memberIds(h: Harness, groupId = "g"): string[] {
  return h.core.group(groupId)?.members.map((m) => m.memberId) ?? [];
}

Deno.test("GroupCoordinator: LeaveGroup v0-2 (one member, top-level error)", async (t) => {
  await t.step("the last member leaves: the group is Empty at once and persisted", () => {
    const h = new Harness();
    const a = h.stableSingle();
    for (const v of [0]) {
      const r = h.leave({ memberId: a.memberId, version: v });
      assert.deepEqual(r, { errorCode: 0 });
    }
    assert.equal(state(h), "Empty");
    assert.equal(h.core.group("g")!.generationId, 2);
    assert.deepEqual(h.last.records.map((r) => r.kind), ["group"]);
  });
  await t.step("an unknown member is UNKNOWN_MEMBER_ID at the top level", () => {
    const h = new Harness();
    h.stableSingle();
    assert.deepEqual(h.leave({ memberId: "ghost", version: 1 }), {
      throttleTimeMs: 0,
      errorCode: ErrorCode.UNKNOWN_MEMBER_ID,
    });
    assert.equal(h.leave({ groupId: "nope", memberId: "x", version: 2 }).errorCode, 25);
    assert.equal(h.leave({ groupId: "", memberId: "x", version: 2 }).errorCode, 24);
  });
  await t.step("a follower leaving a Stable group starts a rebalance", () => {
    const h = new Harness();
    const { a, b, generationId } = h.stablePair();
    assert.equal(h.leave({ memberId: b, version: 2 }).errorCode, 0);
    assert.equal(state(h), "PreparingRebalance");
    assert.equal(h.heartbeat({ memberId: a, generationId }), ErrorCode.REBALANCE_IN_PROGRESS);
    const r = h.joinResponse(h.join({ memberId: a }));
    assert.equal(r.generationId, generationId + 1);
    assert.deepEqual(r.members.map((m) => m.memberId), [a]);
  });
});

Deno.test("GroupCoordinator: LeaveGroup v3+ (batch, per-member errors)", async (t) => {
  await t.step("known and unknown members in one request", () => {
    const h = new Harness();
    const { a, b } = h.stablePair();
    const r = h.leave({
      members: [{ memberId: a }, { memberId: "ghost" }, { memberId: b }],
      version: 3,
    });
    assert.deepEqual(r, {
      throttleTimeMs: 0,
      errorCode: 0,
      members: [
        { memberId: a, groupInstanceId: null, errorCode: 0 },
        { memberId: "ghost", groupInstanceId: null, errorCode: ErrorCode.UNKNOWN_MEMBER_ID },
        { memberId: b, groupInstanceId: null, errorCode: 0 },
      ],
    });
    assert.equal(state(h), "Empty");
  });
  await t.step("an unknown group: every member UNKNOWN_MEMBER_ID, top level NONE", () => {
    const h = new Harness();
    const r = h.leave({ groupId: "nope", members: [{ memberId: "x" }] });
    assert.equal(r.errorCode, 0);
    assert.deepEqual(r.members.map((m) => m.errorCode), [ErrorCode.UNKNOWN_MEMBER_ID]);
  });
  await t.step("an empty group id: INVALID_GROUP_ID and no member results", () => {
    const h = new Harness();
    const r = h.leave({ groupId: "", members: [{ memberId: "x" }] });
    assert.equal(r.errorCode, ErrorCode.INVALID_GROUP_ID);
    assert.deepEqual(r.members, []);
  });
  await t.step("a pending (MEMBER_ID_REQUIRED) member may leave", () => {
    const h = new Harness();
    const pending = h.joinResponse(h.join()).memberId;
    const r = h.leave({ members: [{ memberId: pending }] });
    assert.deepEqual(r.members.map((m) => m.errorCode), [0]);
    assert.equal(h.joinResponse(h.join({ memberId: pending })).errorCode, 25);
  });
  await t.step("a leave during PreparingRebalance completes the join for the others", () => {
    const h = new Harness();
    const { a, b, generationId } = h.stablePair();
    const aj = h.join({ memberId: a });
    assert.equal(h.response(ApiKey.JoinGroup, aj), undefined);
    h.leave({ members: [{ memberId: b }] });
    assert.equal(h.joinResponse(aj).generationId, generationId + 1);
  });
  await t.step("a member waiting in JoinGroup that leaves gets UNKNOWN_MEMBER_ID", () => {
    const h = new Harness();
    const { a } = h.stablePair();
    const aj = h.join({ memberId: a });
    h.leave({ members: [{ memberId: a }] });
    assert.equal(h.joinResponse(aj).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });
  await t.step("a member waiting in SyncGroup that leaves gets UNKNOWN_MEMBER_ID", () => {
    const h = new Harness();
    const x = h.stableSingle();
    const yj = h.joinNew();
    h.join({ memberId: x.memberId });
    const y = h.joinResponse(yj);
    const ys = h.sync({ memberId: y.memberId, generationId: y.generationId });
    h.leave({ members: [{ memberId: y.memberId }] });
    assert.equal(h.syncResponse(ys).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal(state(h), "PreparingRebalance");
  });
});

Deno.test("GroupCoordinator: static membership (KIP-345)", async (t) => {
  await t.step("rejoin with a new member id replaces the old one without a rebalance", () => {
    const h = new Harness();
    const s = h.stableSingle({ groupInstanceId: "i-1", version: 8 });
    assert.match(s.memberId, /^i-1-/);
    const before = h.records.length;
    const r = h.joinResponse(h.join({ groupInstanceId: "i-1", version: 8 }));
    assert.equal(r.errorCode, 0);
    assert.notEqual(r.memberId, s.memberId);
    assert.equal(r.generationId, s.generationId, "no new generation");
    assert.equal(r.leader, s.memberId, "before v9 the old leader id is returned");
    assert.deepEqual(r.members, []);
    assert.equal(state(h), "Stable");
    assert.deepEqual(memberIds(h), [r.memberId]);
    assert.equal(h.records.length, before + 1, "the replacement is persisted");
    const sync = h.syncResponse(
      h.sync({ memberId: r.memberId, generationId: r.generationId, groupInstanceId: "i-1" }),
    );
    assert.deepEqual(sync.assignment, new Uint8Array([1]), "the current assignment");
    assert.equal(
      h.heartbeat({ memberId: s.memberId, generationId: 1, groupInstanceId: "i-1" }),
      ErrorCode.FENCED_INSTANCE_ID,
    );
    assert.equal(
      h.heartbeat({ memberId: s.memberId, generationId: 1 }),
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });
  await t.step("v9: a rejoining static leader is told to skip the assignment", () => {
    const h = new Harness();
    const s = h.stableSingle({ groupInstanceId: "i-1" });
    const r = h.joinResponse(h.join({ groupInstanceId: "i-1" }));
    assert.equal(r.leader, r.memberId);
    assert.equal(r.skipAssignment, true);
    assert.equal(r.members.length, 1);
    assert.equal(r.generationId, s.generationId);
  });
  await t.step("a static follower's rejoin is not the leader and skips nothing", () => {
    const h = new Harness();
    const a = h.stableSingle({ groupInstanceId: "i-a" });
    const bj = h.join({ groupInstanceId: "i-b" });
    h.join({ memberId: a.memberId, groupInstanceId: "i-a" });
    const b = h.joinResponse(bj);
    h.sync({ memberId: a.memberId, generationId: 2, groupInstanceId: "i-a", assignments: [] });
    h.sync({ memberId: b.memberId, generationId: 2, groupInstanceId: "i-b" });
    const r = h.joinResponse(h.join({ groupInstanceId: "i-b" }));
    assert.equal(r.skipAssignment, false);
    assert.equal(r.leader, a.memberId);
    assert.deepEqual(r.members, []);
  });
  await t.step("a rejoin that changes the selected protocol rebalances", () => {
    const h = new Harness();
    h.stableSingle({ groupInstanceId: "i-1" });
    const r = h.joinResponse(
      h.join({ groupInstanceId: "i-1", protocols: [{ name: "sticky" }, { name: "range" }] }),
    );
    assert.equal(r.generationId, 2);
    assert.equal(r.protocolName, "sticky");
  });
  await t.step("a stale member id is FENCED_INSTANCE_ID everywhere", () => {
    const h = new Harness();
    const s = h.stableSingle({ groupInstanceId: "i-1" });
    const fresh = h.joinResponse(h.join({ groupInstanceId: "i-1" }));
    assert.equal(
      h.joinResponse(h.join({ memberId: s.memberId, groupInstanceId: "i-1" })).errorCode,
      ErrorCode.FENCED_INSTANCE_ID,
    );
    assert.equal(
      h.syncResponse(h.sync({ memberId: s.memberId, generationId: 1, groupInstanceId: "i-1" }))
        .errorCode,
      ErrorCode.FENCED_INSTANCE_ID,
    );
    const c = h.commit({
      memberId: s.memberId,
      generationId: 1,
      groupInstanceId: "i-1",
      offsets: [{ topic: "t", partition: 0, offset: 1 }],
    });
    assert.deepEqual(Harness.commitCodes(c), ["t-0:82"]);
    assert.equal(
      h.leave({ members: [{ memberId: s.memberId, groupInstanceId: "i-1" }] }).members[0]!
        .errorCode,
      ErrorCode.FENCED_INSTANCE_ID,
    );
    assert.deepEqual(memberIds(h), [fresh.memberId]);
  });
  await t.step("a known member id with an unknown instance id is UNKNOWN_MEMBER_ID", () => {
    const h = new Harness();
    const s = h.stableSingle();
    const r = h.joinResponse(h.join({ memberId: s.memberId, groupInstanceId: "i-9" }));
    assert.equal(r.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });
  await t.step("the old incarnation's pending JoinGroup is fenced", () => {
    const h = new Harness();
    const a = h.stableSingle({ clientId: "a" });
    const sj = h.join({ groupInstanceId: "i-1" }); // rebalance, waits for a
    assert.equal(h.response(ApiKey.JoinGroup, sj), undefined);
    const again = h.join({ groupInstanceId: "i-1" });
    assert.equal(h.joinResponse(sj).errorCode, ErrorCode.FENCED_INSTANCE_ID);
    h.join({ memberId: a.memberId });
    assert.equal(h.joinResponse(again).errorCode, 0);
    assert.equal(h.core.group("g")!.members.length, 2);
  });
  await t.step("leave by group.instance.id without a member id", () => {
    const h = new Harness();
    h.stableSingle({ groupInstanceId: "i-1" });
    const r = h.leave({
      members: [{ memberId: "", groupInstanceId: "i-1" }, {
        memberId: "",
        groupInstanceId: "i-2",
      }],
    });
    assert.deepEqual(r.members.map((m) => [m.groupInstanceId, m.errorCode]), [
      ["i-1", 0],
      ["i-2", ErrorCode.UNKNOWN_MEMBER_ID],
    ]);
    assert.equal(state(h), "Empty");
  });
  await t.step("a static member that misses the join phase stays in the group", () => {
    const h = new Harness();
    const long = { sessionTimeoutMs: 120_000, rebalanceTimeoutMs: 30_000 };
    const a = h.stableSingle({ ...long, clientId: "a" });
    const sj = h.join({ ...long, groupInstanceId: "i-1" });
    h.join({ ...long, memberId: a.memberId });
    const s = h.joinResponse(sj);
    h.sync({ memberId: a.memberId, generationId: 2, assignments: [] });
    h.sync({ memberId: s.memberId, generationId: 2, groupInstanceId: "i-1" });
    const aj = h.join({ ...long, memberId: a.memberId }); // rebalance; the static member sleeps
    h.advance(30_000);
    const r = h.joinResponse(aj);
    assert.equal(r.generationId, 3);
    assert.deepEqual(r.members.map((m) => m.memberId), [a.memberId, s.memberId]);
    assert.deepEqual(r.members[1]!.metadata, subscription(["t"]));
  });
});
