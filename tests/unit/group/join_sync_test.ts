import assert from "node:assert/strict";
import { ApiKey, ErrorCode } from "../../../lib/protocol/mod.ts";
import { NEW_MEMBER_JOIN_TIMEOUT_MS } from "../../../lib/group/mod.ts";
import { Harness, request, subscription, T0, testConfig } from "./_harness.ts";

const A1 = new Uint8Array([0xa1]);
const B1 = new Uint8Array([0xb1]);

function state(h: Harness, groupId = "g"): string | undefined {
  return h.core.group(groupId)?.state;
}

Deno.test("GroupCoordinator: a single consumer joins, syncs and heartbeats", async (t) => {
  const h = new Harness();
  const first = h.joinResponse(h.join());
  await t.step("v4+ join without member id gets MEMBER_ID_REQUIRED and a generated id", () => {
    assert.equal(first.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
    assert.match(
      first.memberId,
      /^client-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.equal(first.generationId, -1);
    assert.deepEqual(first.members, []);
    assert.equal(state(h), "Empty");
    assert.deepEqual(h.last.records, []);
  });
  const joinId = h.join({ memberId: first.memberId });
  const j = h.joinResponse(joinId);
  await t.step("the rejoin completes generation 1 with the member as leader", () => {
    assert.deepEqual(j, {
      throttleTimeMs: 0,
      errorCode: 0,
      generationId: 1,
      protocolType: "consumer",
      protocolName: "range",
      leader: first.memberId,
      skipAssignment: false,
      memberId: first.memberId,
      members: [{ memberId: first.memberId, groupInstanceId: null, metadata: subscription(["t"]) }],
    });
    assert.equal(state(h), "CompletingRebalance");
  });
  await t.step("heartbeat during CompletingRebalance is fine", () => {
    assert.equal(h.heartbeat({ memberId: j.memberId, generationId: 1 }), ErrorCode.NONE);
  });
  const syncId = h.sync({
    memberId: j.memberId,
    generationId: 1,
    assignments: [{ memberId: j.memberId, assignment: A1 }],
  });
  await t.step("the leader's sync returns its assignment and persists the group first", () => {
    assert.deepEqual(h.syncResponse(syncId), {
      throttleTimeMs: 0,
      errorCode: 0,
      protocolType: "consumer",
      protocolName: "range",
      assignment: A1,
    });
    assert.equal(state(h), "Stable");
    assert.equal(h.last.records.length, 1);
    const r = h.last.records[0]!;
    assert.equal(r.kind, "group");
    if (r.kind !== "group") return;
    assert.equal(r.generationId, 1);
    assert.equal(r.leaderId, j.memberId);
    assert.equal(r.protocolName, "range");
    assert.deepEqual(r.members.map((m) => [m.memberId, m.assignment, m.subscription]), [
      [j.memberId, A1, subscription(["t"])],
    ]);
  });
  await t.step("heartbeats keep the session alive past its timeout", () => {
    for (let i = 0; i < 5; i++) {
      h.advance(9_000);
      assert.equal(h.heartbeat({ memberId: j.memberId, generationId: 1 }), ErrorCode.NONE);
    }
    assert.equal(state(h), "Stable");
  });
  await t.step("a follower-less Stable rejoin by the leader starts a new generation", () => {
    const r = h.joinResponse(h.join({ memberId: j.memberId }));
    assert.equal(r.errorCode, 0);
    assert.equal(r.generationId, 2);
  });
});

Deno.test("GroupCoordinator: MEMBER_ID_REQUIRED round trip (KIP-394)", async (t) => {
  await t.step("v3 joins at once without a member id", () => {
    const h = new Harness();
    const r = h.joinResponse(h.join({ version: 3 }));
    assert.equal(r.errorCode, 0);
    assert.match(r.memberId, /^client-/);
    assert.equal(r.generationId, 1);
    assert.equal(r.protocolType, undefined, "v3 responses have no protocolType");
  });
  await t.step("a static member (v5+) is never asked for a member id", () => {
    const h = new Harness();
    const r = h.joinResponse(h.join({ groupInstanceId: "i-1" }));
    assert.equal(r.errorCode, 0);
    assert.match(r.memberId, /^i-1-/);
  });
  await t.step("the generated id is deterministic for a seed", () => {
    const a = new Harness(testConfig(), 42);
    const b = new Harness(testConfig(), 42);
    assert.equal(a.joinResponse(a.join()).memberId, b.joinResponse(b.join()).memberId);
  });
  await t.step("a pending member id expires after the session timeout", () => {
    const h = new Harness();
    const id = h.joinResponse(h.join({ sessionTimeoutMs: 6_000 })).memberId;
    assert.equal(h.core.nextDeadlineMs(), T0 + 6_000);
    h.advance(6_000);
    const r = h.joinResponse(h.join({ memberId: id }));
    assert.equal(r.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
    assert.equal(h.core.group("g"), undefined, "an unused group is forgotten");
  });
  await t.step("a pending member blocks the join phase until it rejoins", () => {
    const h = new Harness();
    const a = h.stableSingle();
    const pendingId = h.joinResponse(h.join()).memberId;
    const aj = h.join({ memberId: a.memberId }); // leader rejoin → rebalance
    assert.equal(h.response(ApiKey.JoinGroup, aj), undefined);
    const bj = h.join({ memberId: pendingId });
    assert.equal(h.joinResponse(aj).generationId, 2);
    assert.equal(h.joinResponse(bj).generationId, 2);
  });
  await t.step("a join with an unknown member id for an unknown group is UNKNOWN_MEMBER_ID", () => {
    const h = new Harness();
    assert.equal(
      h.joinResponse(h.join({ memberId: "ghost" })).errorCode,
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });
});

Deno.test("GroupCoordinator: JoinGroup validation", async (t) => {
  const cases: [string, Parameters<Harness["join"]>[0], number][] = [
    ["empty group id", { groupId: "" }, ErrorCode.INVALID_GROUP_ID],
    ["session timeout below min", { sessionTimeoutMs: 5_999 }, ErrorCode.INVALID_SESSION_TIMEOUT],
    [
      "session timeout above max",
      { sessionTimeoutMs: 1_800_001 },
      ErrorCode.INVALID_SESSION_TIMEOUT,
    ],
    ["empty protocol type", { protocolType: "" }, ErrorCode.INCONSISTENT_GROUP_PROTOCOL],
    ["no protocols", { protocols: [] }, ErrorCode.INCONSISTENT_GROUP_PROTOCOL],
  ];
  for (const [name, opts, code] of cases) {
    await t.step(name, () => {
      const h = new Harness();
      const r = h.joinResponse(h.join(opts));
      assert.equal(r.errorCode, code);
      assert.equal(r.generationId, -1);
      assert.equal(h.core.groupIds().length, 0);
    });
  }
  await t.step("session timeout bounds are inclusive", () => {
    const h = new Harness();
    assert.equal(h.joinResponse(h.join({ version: 3, sessionTimeoutMs: 6_000 })).errorCode, 0);
    assert.equal(
      h.joinResponse(h.join({ version: 3, groupId: "g2", sessionTimeoutMs: 1_800_000 })).errorCode,
      0,
    );
  });
  await t.step("v0-6 responses carry an empty (not null) protocol name on errors", () => {
    const h = new Harness();
    const r = h.joinResponse(h.join({ version: 6, groupId: "" }));
    assert.equal(r.protocolName, "");
    assert.equal(r.leader, "");
    assert.equal("protocolType" in r, false);
    assert.equal("skipAssignment" in r, false);
  });
  await t.step("v0 uses the session timeout as the rebalance timeout", () => {
    const h = new Harness();
    const r = h.joinResponse(h.join({ version: 0, sessionTimeoutMs: 7_000 }));
    assert.equal(r.errorCode, 0);
    assert.equal(h.core.group("g")!.members[0]!.rebalanceTimeoutMs, 7_000);
  });
  await t.step("GROUP_MAX_SIZE_REACHED beyond group.max.size", () => {
    const h = new Harness(testConfig({ maxGroupSize: 1 }));
    h.stableSingle();
    const r = h.joinResponse(h.join());
    assert.equal(r.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
    assert.equal(r.memberId, "");
    assert.equal(
      h.joinResponse(h.join({ version: 3 })).errorCode,
      ErrorCode.GROUP_MAX_SIZE_REACHED,
    );
  });
  await t.step("a new member is admitted up to the number of members awaiting join", () => {
    const h = new Harness(testConfig({ maxGroupSize: 2, initialRebalanceDelayMs: 1_000 }));
    h.join({ version: 3 });
    h.join({ version: 3 });
    const third = h.joinResponse(h.join({ version: 3 }));
    assert.equal(third.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  });
});

Deno.test("GroupCoordinator: two members, a rebalance completes when all rejoin", async (t) => {
  const h = new Harness();
  const a = h.stableSingle({ clientId: "a" });
  const bId = h.joinNew({ clientId: "b" });
  await t.step("a new member starts a rebalance and waits", () => {
    assert.equal(h.response(ApiKey.JoinGroup, bId), undefined);
    assert.equal(state(h), "PreparingRebalance");
  });
  await t.step("the old member's heartbeat says REBALANCE_IN_PROGRESS", () => {
    assert.equal(
      h.heartbeat({ memberId: a.memberId, generationId: 1 }),
      ErrorCode.REBALANCE_IN_PROGRESS,
    );
  });
  await t.step("sync and commit during PreparingRebalance", () => {
    const s = h.syncResponse(h.sync({ memberId: a.memberId, generationId: 1 }));
    assert.equal(s.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    const c = h.commit({
      memberId: a.memberId,
      generationId: 1,
      offsets: [{ topic: "t", partition: 0, offset: 5 }],
    });
    assert.deepEqual(Harness.commitCodes(c), ["t-0:0"], "commits are allowed while preparing");
  });
  const aj = h.join({ memberId: a.memberId, clientId: "a" });
  const ra = h.joinResponse(aj);
  const rb = h.joinResponse(bId);
  await t.step("the last rejoin releases every pending JoinGroup", () => {
    assert.equal(ra.generationId, 2);
    assert.equal(rb.generationId, 2);
    assert.equal(ra.leader, a.memberId);
    assert.equal(rb.leader, a.memberId);
    assert.deepEqual(ra.members.map((m) => m.memberId), [a.memberId, rb.memberId]);
    assert.deepEqual(rb.members, [], "only the leader gets the member metadata");
    assert.equal(h.last.responses.length, 2);
  });
  const bs = h.sync({ memberId: rb.memberId, generationId: 2 });
  await t.step("a follower's sync waits for the leader's", () => {
    assert.equal(h.response(ApiKey.SyncGroup, bs), undefined);
  });
  const as = h.sync({
    memberId: a.memberId,
    generationId: 2,
    assignments: [{ memberId: a.memberId, assignment: A1 }, {
      memberId: rb.memberId,
      assignment: B1,
    }],
  });
  await t.step("the leader's sync releases every member's assignment", () => {
    assert.deepEqual(h.syncResponse(as).assignment, A1);
    assert.deepEqual(h.syncResponse(bs).assignment, B1);
    assert.equal(h.syncResponse(bs).protocolName, "range");
    assert.equal(h.last.records.length, 1);
    assert.equal(state(h), "Stable");
  });
  await t.step("a late follower sync in Stable gets its assignment at once", () => {
    const again = h.syncResponse(h.sync({ memberId: rb.memberId, generationId: 2 }));
    assert.deepEqual(again.assignment, B1);
  });
});

Deno.test("GroupCoordinator: the rebalance timeout removes members that did not rejoin", async (t) => {
  const h = new Harness();
  const long = { sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 30_000 };
  const a = h.stableSingle({ ...long, clientId: "a" });
  const bj0 = h.joinNew({ ...long, clientId: "b" });
  h.join({ memberId: a.memberId, ...long, clientId: "a" });
  const b = h.joinResponse(bj0);
  h.sync({ memberId: b.memberId, generationId: 2 });
  h.sync({ memberId: a.memberId, generationId: 2, assignments: [] });
  assert.equal(state(h), "Stable");
  const start = h.now;
  const cj = h.joinNew({ ...long, clientId: "c" });
  const aj = h.join({ memberId: a.memberId, ...long, clientId: "a" });
  await t.step("the join phase waits for B until the rebalance timeout", () => {
    h.advance(29_999);
    assert.equal(h.response(ApiKey.JoinGroup, aj), undefined);
    assert.equal(h.core.group("g")!.members.length, 3);
  });
  await t.step("at the timeout the rejoined members get the new generation without B", () => {
    h.advance(1);
    assert.equal(h.now, start + 30_000);
    const ra = h.joinResponse(aj);
    assert.equal(ra.generationId, 3);
    assert.deepEqual(
      ra.members.map((m) => m.memberId).sort(),
      [a.memberId, h.joinResponse(cj).memberId].sort(),
    );
    assert.equal(
      h.heartbeat({ memberId: b.memberId, generationId: 2 }),
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });
});

Deno.test("GroupCoordinator: the leader is re-elected when it does not rejoin", () => {
  const h = new Harness();
  const long = { sessionTimeoutMs: 60_000 };
  const a = h.stableSingle(long);
  const bj = h.joinNew(long);
  h.advance(30_000);
  const rb = h.joinResponse(bj);
  assert.equal(rb.generationId, 2);
  assert.equal(rb.leader, rb.memberId);
  assert.deepEqual(rb.members.map((m) => m.memberId), [rb.memberId]);
  assert.equal(h.heartbeat({ memberId: a.memberId, generationId: 1 }), ErrorCode.UNKNOWN_MEMBER_ID);
});

Deno.test("GroupCoordinator: initial rebalance delay (InitialDelayedJoin)", async (t) => {
  await t.step("a lone first member waits the delay", () => {
    const h = new Harness(testConfig({ initialRebalanceDelayMs: 3_000 }));
    const id = h.join({ version: 3 });
    assert.equal(h.core.nextDeadlineMs(), T0 + 3_000);
    h.advance(2_999);
    assert.equal(h.response(ApiKey.JoinGroup, id), undefined);
    h.advance(1);
    assert.equal(h.joinResponse(id).generationId, 1);
  });
  await t.step("new members extend it by the delay while they keep coming", () => {
    const h = new Harness(testConfig({ initialRebalanceDelayMs: 3_000 }));
    const ids = [h.join({ version: 3, rebalanceTimeoutMs: 10_000 })];
    h.advance(1_000);
    ids.push(h.join({ version: 3, rebalanceTimeoutMs: 10_000 }));
    h.advance(1_000);
    ids.push(h.join({ version: 3, rebalanceTimeoutMs: 10_000 }));
    h.advance(1_000); // T0+3000: extended to T0+6000 (remaining 10000-3000-3000)
    assert.equal(h.core.nextDeadlineMs(), T0 + 6_000);
    for (const id of ids) assert.equal(h.response(ApiKey.JoinGroup, id), undefined);
    h.advance(3_000);
    for (const id of ids) assert.equal(h.joinResponse(id).generationId, 1);
    assert.equal(h.joinResponse(ids[0]!).members.length, 3);
  });
  await t.step("the extension is capped by the rebalance timeout", () => {
    const h = new Harness(testConfig({ initialRebalanceDelayMs: 3_000 }));
    const a = h.join({ version: 3, rebalanceTimeoutMs: 5_000 });
    h.advance(1_000);
    h.join({ version: 3, rebalanceTimeoutMs: 5_000 });
    h.advance(2_000); // remaining 2000: one last delay of 2000
    assert.equal(h.core.nextDeadlineMs(), T0 + 5_000);
    h.advance(1_000);
    h.join({ version: 3, rebalanceTimeoutMs: 5_000 }); // remaining is now 0: no more extension
    h.advance(1_000);
    assert.equal(h.joinResponse(a).members.length, 3);
  });
  await t.step("everyone joined does not end the initial delay early", () => {
    const h = new Harness(testConfig({ initialRebalanceDelayMs: 3_000 }));
    const id = h.join({ version: 3 });
    h.advance(100);
    assert.equal(h.response(ApiKey.JoinGroup, id), undefined);
  });
  await t.step("a rebalance of a non-empty group does not wait the delay", () => {
    const h = new Harness(testConfig({ initialRebalanceDelayMs: 3_000 }));
    const j = h.join({ version: 3 });
    h.advance(3_000);
    const m = h.joinResponse(j);
    h.sync({ memberId: m.memberId, generationId: 1, assignments: [] });
    const again = h.join({ version: 3, memberId: m.memberId });
    assert.equal(h.joinResponse(again).generationId, 2);
  });
});

Deno.test("GroupCoordinator: protocol selection (Kafka's selectProtocol)", async (t) => {
  const cases: [string, string[][], string | number][] = [
    ["the only common protocol wins", [["range", "roundrobin"], ["roundrobin", "range"], [
      "roundrobin",
    ]], "roundrobin"],
    ["most first-preference votes among common ones", [["x", "y"], ["y", "x"], ["x", "y"]], "x"],
    ["preference skips unsupported protocols", [["z", "y", "x"], ["y", "x"], ["x", "y"]], "y"],
    ["no common protocol", [["range"], ["sticky"]], ErrorCode.INCONSISTENT_GROUP_PROTOCOL],
  ];
  for (const [name, lists, expected] of cases) {
    await t.step(name, () => {
      const h = new Harness(testConfig({ initialRebalanceDelayMs: 1_000 }));
      const ids = lists.map((ps) =>
        h.join({ version: 3, protocols: ps.map((p) => ({ name: p })) })
      );
      h.runUntil(() => h.response(ApiKey.JoinGroup, ids[0]!) !== undefined);
      if (typeof expected === "string") {
        for (const id of ids) assert.equal(h.joinResponse(id).protocolName, expected);
      } else {
        assert.equal(h.joinResponse(ids.at(-1)!).errorCode, expected);
      }
    });
  }
  await t.step("a mismatching protocol type is INCONSISTENT_GROUP_PROTOCOL", () => {
    const h = new Harness();
    h.stableSingle();
    assert.equal(
      h.joinResponse(h.join({ version: 3, protocolType: "connect" })).errorCode,
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
  });
  await t.step("an Empty group accepts a new protocol type", () => {
    const h = new Harness();
    const a = h.stableSingle();
    h.leave({ members: [{ memberId: a.memberId }] });
    assert.equal(state(h), "Empty");
    const r = h.joinResponse(
      h.join({ version: 3, protocolType: "connect", protocols: [{ name: "v1" }] }),
    );
    assert.equal(r.errorCode, 0);
    assert.equal(r.protocolType, undefined);
    assert.equal(h.core.group("g")!.protocolType, "connect");
  });
});

Deno.test("GroupCoordinator: session expiry removes the member and rebalances", async (t) => {
  const h = new Harness();
  const a = h.stableSingle({ clientId: "a" });
  const bj = h.joinNew({ clientId: "b" });
  h.join({ memberId: a.memberId });
  const b = h.joinResponse(bj);
  h.sync({ memberId: a.memberId, generationId: 2, assignments: [] });
  h.sync({ memberId: b.memberId, generationId: 2 });
  await t.step("B stops heartbeating: removed at its session timeout", () => {
    for (let i = 0; i < 2; i++) {
      h.advance(5_000);
      h.heartbeat({ memberId: a.memberId, generationId: 2 });
    }
    assert.equal(state(h), "PreparingRebalance");
    assert.deepEqual(h.core.group("g")!.members.map((m) => m.memberId), [a.memberId]);
    assert.equal(
      h.heartbeat({ memberId: a.memberId, generationId: 2 }),
      ErrorCode.REBALANCE_IN_PROGRESS,
    );
  });
  await t.step("A rejoins and the new generation has only A", () => {
    const r = h.joinResponse(h.join({ memberId: a.memberId }));
    assert.equal(r.generationId, 3);
    assert.equal(r.members.length, 1);
  });
  await t.step("the last member's expiry leaves the group Empty and persisted", () => {
    h.sync({ memberId: a.memberId, generationId: 3, assignments: [] });
    h.advance(10_000);
    assert.equal(state(h), "Empty");
    const g = h.core.group("g")!;
    assert.equal(g.generationId, 4);
    const rec = h.last.records.at(-1)!;
    assert.equal(rec.kind, "group");
    if (rec.kind === "group") {
      assert.equal(rec.generationId, 4);
      assert.deepEqual(rec.members, []);
      assert.equal(rec.protocolName, null);
      assert.equal(rec.protocolType, "consumer");
    }
  });
  await t.step("a member awaiting the join phase does not expire", () => {
    const h2 = new Harness();
    const long = { sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 60_000 };
    const x = h2.stableSingle(long);
    const yj = h2.joinNew(long);
    h2.join({ memberId: x.memberId, ...long });
    const y = h2.joinResponse(yj);
    h2.sync({ memberId: x.memberId, generationId: 2, assignments: [] });
    h2.sync({ memberId: y.memberId, generationId: 2 });
    h2.join({ memberId: x.memberId, ...long }); // leader rejoin: waits for y up to 60 s
    h2.advance(6_000); // y's session expires (y is not awaiting join), x is waiting: kept
    assert.deepEqual(h2.core.group("g")!.members.map((m) => m.memberId), [x.memberId]);
    assert.equal(state(h2), "CompletingRebalance");
  });
  await t.step("a new member that never completes a join is dropped after 5 minutes", () => {
    const h3 = new Harness();
    const long = { sessionTimeoutMs: 600_000, rebalanceTimeoutMs: 600_000 };
    const x = h3.stableSingle(long);
    const yj = h3.joinNew(long);
    h3.advance(NEW_MEMBER_JOIN_TIMEOUT_MS - 1_000);
    h3.heartbeat({ memberId: x.memberId, generationId: 1 });
    h3.advance(1_000);
    assert.equal(h3.joinResponse(yj).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

Deno.test("GroupCoordinator: Heartbeat error codes", async (t) => {
  const h = new Harness();
  const a = h.stableSingle({ groupInstanceId: "i-1" });
  const cases: [string, Parameters<Harness["heartbeat"]>[0], number][] = [
    ["ok", { memberId: a.memberId, generationId: 1 }, ErrorCode.NONE],
    ["ok with instance id", { memberId: a.memberId, generationId: 1, groupInstanceId: "i-1" }, 0],
    [
      "empty group id",
      { groupId: "", memberId: a.memberId, generationId: 1 },
      ErrorCode.INVALID_GROUP_ID,
    ],
    [
      "unknown group",
      { groupId: "nope", memberId: a.memberId, generationId: 1 },
      ErrorCode.UNKNOWN_MEMBER_ID,
    ],
    ["unknown member", { memberId: "ghost", generationId: 1 }, ErrorCode.UNKNOWN_MEMBER_ID],
    ["illegal generation", { memberId: a.memberId, generationId: 2 }, ErrorCode.ILLEGAL_GENERATION],
    [
      "fenced instance",
      { memberId: "old", generationId: 1, groupInstanceId: "i-1" },
      ErrorCode.FENCED_INSTANCE_ID,
    ],
    [
      "unknown instance",
      { memberId: a.memberId, generationId: 1, groupInstanceId: "i-2" },
      ErrorCode.UNKNOWN_MEMBER_ID,
    ],
  ];
  for (const [name, req, code] of cases) {
    await t.step(name, () => assert.equal(h.heartbeat(req), code));
  }
  await t.step("v0 responses have no throttle time", () => {
    const id = h.heartbeat({ memberId: a.memberId, generationId: 1, version: 0 });
    assert.equal(id, 0);
  });
});

Deno.test("GroupCoordinator: SyncGroup error codes and waiting", async (t) => {
  const h = new Harness();
  const a = h.stableSingle();
  const cases: [string, Parameters<Harness["sync"]>[0], number][] = [
    [
      "unknown group",
      { groupId: "nope", memberId: a.memberId, generationId: 1 },
      ErrorCode.UNKNOWN_MEMBER_ID,
    ],
    [
      "empty group id",
      { groupId: "", memberId: a.memberId, generationId: 1 },
      ErrorCode.INVALID_GROUP_ID,
    ],
    ["unknown member", { memberId: "ghost", generationId: 1 }, ErrorCode.UNKNOWN_MEMBER_ID],
    ["illegal generation", { memberId: a.memberId, generationId: 7 }, ErrorCode.ILLEGAL_GENERATION],
    [
      "v5 without protocol type",
      { memberId: a.memberId, generationId: 1, protocolType: null },
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    ],
    [
      "wrong protocol name",
      { memberId: a.memberId, generationId: 1, protocolName: "sticky" },
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    ],
    ["v4 ignores protocol fields", {
      memberId: a.memberId,
      generationId: 1,
      version: 4,
      protocolName: null,
    }, ErrorCode.NONE],
  ];
  for (const [name, req, code] of cases) {
    await t.step(name, () => assert.equal(h.syncResponse(h.sync(req)).errorCode, code));
  }
  await t.step("a waiting follower gets REBALANCE_IN_PROGRESS when the rebalance restarts", () => {
    const h2 = new Harness();
    const x = h2.stableSingle();
    const yj = h2.joinNew();
    h2.join({ memberId: x.memberId });
    const y = h2.joinResponse(yj);
    const ys = h2.sync({ memberId: y.memberId, generationId: 2 });
    assert.equal(h2.response(ApiKey.SyncGroup, ys), undefined);
    h2.join({
      memberId: y.memberId,
      protocols: [{ name: "range", metadata: subscription(["u"]) }],
    });
    assert.equal(h2.syncResponse(ys).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    assert.equal(state(h2), "PreparingRebalance");
  });
  await t.step("members the leader leaves out get an empty assignment", () => {
    const h2 = new Harness();
    const x = h2.stableSingle();
    const yj = h2.joinNew();
    h2.join({ memberId: x.memberId });
    const y = h2.joinResponse(yj);
    const ys = h2.sync({ memberId: y.memberId, generationId: 2 });
    h2.sync({
      memberId: x.memberId,
      generationId: 2,
      assignments: [{ memberId: x.memberId, assignment: A1 }, {
        memberId: "stranger",
        assignment: B1,
      }],
    });
    assert.deepEqual(h2.syncResponse(ys).assignment, new Uint8Array(0));
  });
  await t.step("a member that never syncs is removed at the rebalance timeout", () => {
    const h2 = new Harness();
    const long = { sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 20_000 };
    const x = h2.stableSingle(long);
    const yj = h2.joinNew(long);
    h2.join({ memberId: x.memberId, ...long });
    const y = h2.joinResponse(yj);
    h2.sync({ memberId: x.memberId, generationId: 2, assignments: [] });
    assert.equal(state(h2), "Stable");
    h2.advance(10_000);
    assert.equal(h2.heartbeat({ memberId: y.memberId, generationId: 2 }), 0);
    h2.advance(10_000);
    assert.equal(
      h2.heartbeat({ memberId: y.memberId, generationId: 2 }),
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    assert.equal(state(h2), "PreparingRebalance");
  });
  await t.step("a resent JoinGroup in CompletingRebalance gets the same generation", () => {
    const h2 = new Harness();
    const x = h2.joinResponse(h2.joinNew());
    const again = h2.joinResponse(h2.join({ memberId: x.memberId }));
    assert.equal(again.generationId, x.generationId);
    assert.equal(again.leader, x.memberId);
    assert.equal(again.members.length, 1);
  });
  await t.step("a second JoinGroup from a waiting member answers the first", () => {
    const h2 = new Harness();
    const { a, b, generationId } = h2.stablePair();
    const first = h2.join({ memberId: a });
    const second = h2.join({ memberId: a });
    assert.equal(h2.joinResponse(first).errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
    assert.equal(h2.response(ApiKey.JoinGroup, second), undefined);
    h2.join({ memberId: b });
    assert.equal(h2.joinResponse(second).generationId, generationId + 1);
  });
  await t.step("a raw request object from the decoder works for every version", () => {
    const h2 = new Harness();
    const x = h2.joinResponse(h2.joinNew());
    for (let v = 0; v <= 5; v++) {
      const req = request(ApiKey.SyncGroup, v, {
        groupId: "g",
        generationId: x.generationId,
        memberId: x.memberId,
        protocolType: "consumer",
        protocolName: "range",
      });
      const out = h2.core.syncGroup(1000 + v, req, v, h2.now);
      assert.equal(out.responses.length, 1);
      const r = out.responses[0]!.response as { errorCode: number; protocolName?: string };
      assert.equal(r.errorCode, 0);
      assert.equal(r.protocolName, v >= 5 ? "range" : undefined);
    }
  });
});
