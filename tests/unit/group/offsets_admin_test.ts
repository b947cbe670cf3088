import assert from "node:assert/strict";
import {
  ApiKey,
  ErrorCode,
  type OffsetFetchResponse,
  type ResponseTypes,
} from "../../../lib/protocol/mod.ts";
import { GroupCoordinator, groupPartition } from "../../../lib/group/mod.ts";
import { Random } from "../../../lib/util/random.ts";
import { Harness, request, silentLog, subscription, T0, testConfig } from "./_harness.ts";

const DAY = 24 * 60 * 60 * 1000;

function fetchV7(
  h: Harness,
  groupId: string,
  topics: { name: string; partitionIndexes: number[] }[] | null,
) {
  return h.core.offsetFetch(
    request(ApiKey.OffsetFetch, 7, { groupId, topics }),
    7,
  ) as OffsetFetchResponse;
}

Deno.test("GroupCoordinator: simple (generation -1) offset commits", async (t) => {
  const h = new Harness();
  await t.step("a commit to an unknown group creates an Empty group and persists", () => {
    const r = h.commit({
      offsets: [{ topic: "t", partition: 0, offset: 10, metadata: "m", leaderEpoch: 3 }],
    });
    assert.deepEqual(Harness.commitCodes(r), ["t-0:0"]);
    assert.equal(h.core.group("g")!.state, "Empty");
    assert.deepEqual(h.last.records, [{
      kind: "offset",
      groupId: "g",
      topic: "t",
      partition: 0,
      offset: 10,
      leaderEpoch: 3,
      metadata: "m",
      commitTimestampMs: T0,
      expireTimestampMs: null,
    }]);
  });
  await t.step("OffsetFetch returns it; unknown partitions are -1 with empty metadata", () => {
    const r = fetchV7(h, "g", [{ name: "t", partitionIndexes: [0, 1] }, {
      name: "u",
      partitionIndexes: [0],
    }]);
    assert.deepEqual(r, {
      throttleTimeMs: 0,
      errorCode: 0,
      topics: [
        {
          name: "t",
          partitions: [
            {
              partitionIndex: 0,
              committedOffset: 10n,
              committedLeaderEpoch: 3,
              metadata: "m",
              errorCode: 0,
            },
            {
              partitionIndex: 1,
              committedOffset: -1n,
              committedLeaderEpoch: -1,
              metadata: "",
              errorCode: 0,
            },
          ],
        },
        {
          name: "u",
          partitions: [
            {
              partitionIndex: 0,
              committedOffset: -1n,
              committedLeaderEpoch: -1,
              metadata: "",
              errorCode: 0,
            },
          ],
        },
      ],
    });
  });
  await t.step("topics: null returns every committed offset", () => {
    h.commit({ offsets: [{ topic: "a", partition: 2, offset: 7, metadata: null }] });
    assert.deepEqual(h.fetchAll(), ["a-2=7", "t-0=10"]);
    const r = fetchV7(h, "g", null);
    assert.equal(r.topics[0]!.partitions[0]!.metadata, "", "null metadata is stored as empty");
  });
  await t.step("an unknown group fetches -1s (all topics: nothing)", () => {
    assert.deepEqual(fetchV7(h, "nope", null).topics, []);
    assert.equal(
      fetchV7(h, "nope", [{ name: "t", partitionIndexes: [0] }]).topics[0]!.partitions[0]!
        .committedOffset,
      -1n,
    );
  });
  await t.step("the empty group id is a valid offset-storage group (as Kafka)", () => {
    assert.deepEqual(
      Harness.commitCodes(
        h.commit({ groupId: "", offsets: [{ topic: "t", partition: 0, offset: 1 }] }),
      ),
      ["t-0:0"],
    );
    assert.deepEqual(h.fetchAll(""), ["t-0=1"]);
  });
  await t.step("v0 and v1 fetch shapes", () => {
    const v0 = h.core.offsetFetch(
      request(ApiKey.OffsetFetch, 0, {
        groupId: "g",
        topics: [{ name: "t", partitionIndexes: [0] }],
      }),
      0,
    );
    assert.deepEqual(v0, {
      topics: [{
        name: "t",
        partitions: [{ partitionIndex: 0, committedOffset: 10n, metadata: "m", errorCode: 0 }],
      }],
    });
  });
  await t.step(
    "metadata longer than offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE",
    () => {
      const r = h.commit({
        offsets: [
          { topic: "t", partition: 0, offset: 11, metadata: "x".repeat(4097) },
          { topic: "t", partition: 1, offset: 11, metadata: "x".repeat(4096) },
        ],
      });
      assert.deepEqual(Harness.commitCodes(r), ["t-0:12", "t-1:0"]);
      assert.equal(h.last.records.length, 1);
    },
  );
  await t.step("a commit with a generation to an unknown group is ILLEGAL_GENERATION", () => {
    const r = h.commit({
      groupId: "gone",
      memberId: "m",
      generationId: 3,
      offsets: [{ topic: "t", partition: 0, offset: 1 }],
    });
    assert.deepEqual(Harness.commitCodes(r), ["t-0:22"]);
    assert.equal(h.core.group("gone"), undefined);
  });
  await t.step("generation -1 commits to an Empty group whatever the member id", () => {
    const r = h.commit({
      groupId: "g2",
      memberId: "m",
      generationId: -1,
      groupInstanceId: "i",
      offsets: [{ topic: "t", partition: 0, offset: 1 }],
    });
    assert.deepEqual(Harness.commitCodes(r), ["t-0:0"]);
    assert.deepEqual(h.fetchAll("g2"), ["t-0=1"]);
  });
  await t.step("a failed commit to an unknown group leaves no group behind", () => {
    const r = h.commit({
      groupId: "g3",
      offsets: [{ topic: "t", partition: 0, offset: 1, metadata: "x".repeat(5000) }],
    });
    assert.deepEqual(Harness.commitCodes(r), ["t-0:12"]);
    assert.equal(h.core.group("g3"), undefined);
  });
  await t.step("v1 commit timestamps and v2-4 retention are honoured", () => {
    const h2 = new Harness();
    const id = 99;
    const req = request(ApiKey.OffsetCommit, 1, {
      groupId: "g",
      generationIdOrMemberEpoch: -1,
      memberId: "",
      topics: [{
        name: "t",
        partitions: [{
          partitionIndex: 0,
          committedOffset: 5n,
          commitTimestamp: 1234n,
          committedMetadata: "",
        }],
      }],
    });
    h2.waiting.set(id, { apiKey: ApiKey.OffsetCommit, version: 1 });
    h2.absorb(h2.core.offsetCommit(id, req, 1, h2.now));
    assert.equal(h2.core.group("g")!.offsets[0]!.commitTimestampMs, 1234);
    h2.commit({
      version: 2,
      retentionTimeMs: 5_000n,
      offsets: [{ topic: "t", partition: 1, offset: 5 }],
    });
    assert.equal(h2.core.group("g")!.offsets[1]!.expireTimestampMs, T0 + 5_000);
  });
});

Deno.test("GroupCoordinator: member offset commits check generation and state", async (t) => {
  const h = new Harness();
  const a = h.stableSingle({ groupInstanceId: "i-1" });
  const off = [{ topic: "t", partition: 0, offset: 1 }];
  const cases: [string, Parameters<Harness["commit"]>[0], number][] = [
    ["ok", { memberId: a.memberId, generationId: 1, offsets: off }, 0],
    ["ok with instance id", {
      memberId: a.memberId,
      generationId: 1,
      groupInstanceId: "i-1",
      offsets: off,
    }, 0],
    ["simple commit to a group with members", { offsets: off }, ErrorCode.UNKNOWN_MEMBER_ID],
    [
      "unknown member",
      { memberId: "ghost", generationId: 1, offsets: off },
      ErrorCode.UNKNOWN_MEMBER_ID,
    ],
    [
      "illegal generation",
      { memberId: a.memberId, generationId: 0, offsets: off },
      ErrorCode.ILLEGAL_GENERATION,
    ],
    [
      "member id with generation -1",
      { memberId: a.memberId, generationId: -1, offsets: off },
      ErrorCode.ILLEGAL_GENERATION,
    ],
    [
      "fenced instance",
      { memberId: "old", generationId: 1, groupInstanceId: "i-1", offsets: off },
      ErrorCode.FENCED_INSTANCE_ID,
    ],
  ];
  for (const [name, req, code] of cases) {
    await t.step(name, () => {
      const r = h.commit(req);
      assert.deepEqual(Harness.commitCodes(r), [`t-0:${code}`]);
      assert.equal(h.last.records.length, code === 0 ? 1 : 0);
    });
  }
  await t.step("during CompletingRebalance: REBALANCE_IN_PROGRESS", () => {
    const j = h.joinResponse(h.join({ memberId: a.memberId, groupInstanceId: "i-1" }));
    assert.equal(h.core.group("g")!.state, "CompletingRebalance");
    const r = h.commit({
      memberId: a.memberId,
      generationId: j.generationId,
      groupInstanceId: "i-1",
      offsets: off,
    });
    assert.deepEqual(Harness.commitCodes(r), [`t-0:${ErrorCode.REBALANCE_IN_PROGRESS}`]);
  });
  await t.step("a commit resets the member's session", () => {
    const h2 = new Harness();
    const m = h2.stableSingle({ sessionTimeoutMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      h2.advance(9_000);
      h2.commit({ memberId: m.memberId, generationId: 1, offsets: off });
    }
    assert.equal(h2.core.group("g")!.state, "Stable");
  });
});

Deno.test("GroupCoordinator: OffsetFetch v8+ answers several groups", () => {
  const h = new Harness();
  h.commit({ groupId: "g1", offsets: [{ topic: "t", partition: 0, offset: 1 }] });
  h.commit({
    groupId: "g2",
    offsets: [{ topic: "t", partition: 0, offset: 2 }, { topic: "u", partition: 1, offset: 3 }],
  });
  for (const v of [8, 9]) {
    const r = h.core.offsetFetch(
      request(ApiKey.OffsetFetch, v, {
        groups: [
          { groupId: "g1", topics: [{ name: "t", partitionIndexes: [0, 5] }] },
          { groupId: "g2", topics: null },
          { groupId: "g3", topics: null },
        ],
      }),
      v,
    ) as OffsetFetchResponse;
    assert.deepEqual(Object.keys(r).sort(), ["groups", "throttleTimeMs"]);
    assert.deepEqual(
      r.groups.map((
        g,
      ) => [
        g.groupId,
        g.errorCode,
        g.topics.flatMap((t) =>
          t.partitions.map((p) => `${t.name}-${p.partitionIndex}=${p.committedOffset}`)
        ),
      ]),
      [
        ["g1", 0, ["t-0=1", "t-5=-1"]],
        ["g2", 0, ["t-0=2", "u-1=3"]],
        ["g3", 0, []],
      ],
    );
  }
});

Deno.test("GroupCoordinator: offset expiry (offsets.retention.ms, KIP-211)", async (t) => {
  const config = testConfig({
    offsetsRetentionMs: 7 * DAY,
    offsetsRetentionCheckIntervalMs: 60_000,
  });
  await t.step(
    "a simple group's offsets expire from their commit time; then the group goes",
    () => {
      const h = new Harness(config);
      h.commit({ offsets: [{ topic: "t", partition: 0, offset: 1 }] });
      h.advance(DAY);
      h.commit({ offsets: [{ topic: "t", partition: 1, offset: 1 }] });
      h.now = T0 + 7 * DAY + 60_000;
      h.tick();
      assert.deepEqual(h.fetchAll(), ["t-1=1"]);
      assert.deepEqual(h.last.records, [{
        kind: "offset-tombstone",
        groupId: "g",
        topic: "t",
        partition: 0,
      }]);
      h.now = T0 + 8 * DAY + 60_000;
      h.tick();
      assert.equal(h.core.group("g"), undefined);
      assert.deepEqual(
        h.last.records.map((r) => r.kind),
        ["offset-tombstone"],
        "no group tombstone for generation 0",
      );
    },
  );
  await t.step("a consumer group whose member died goes with its offsets", () => {
    const h = new Harness(config);
    const a = h.stableSingle();
    h.commit({
      memberId: a.memberId,
      generationId: 1,
      offsets: [{ topic: "t", partition: 0, offset: 1 }],
    });
    h.advance(10_000); // no heartbeats: the session expires, the group empties
    assert.equal(h.core.group("g")!.state, "Empty");
    h.now = T0 + 10_000 + 7 * DAY + 60_000;
    h.tick();
    assert.equal(h.core.group("g"), undefined);
  });
  await t.step("an Empty consumer group keeps offsets until retention after emptying", () => {
    const h = new Harness(config);
    const a = h.stableSingle();
    h.commit({
      memberId: a.memberId,
      generationId: 1,
      offsets: [{ topic: "t", partition: 0, offset: 1 }],
    });
    h.advance(3 * DAY);
    h.leave({ members: [{ memberId: a.memberId }] });
    const emptyAt = h.now;
    h.now = emptyAt + 7 * DAY - 1;
    h.tick();
    assert.deepEqual(h.fetchAll(), ["t-0=1"]);
    h.now = emptyAt + 7 * DAY + 60_000;
    h.tick();
    assert.equal(h.core.group("g"), undefined);
    assert.deepEqual(h.last.records.map((r) => r.kind), ["offset-tombstone", "group-tombstone"]);
  });
  await t.step("a Stable consumer group keeps subscribed topics' offsets only", () => {
    const h = new Harness(config);
    const m = h.stableSingle({ sessionTimeoutMs: 1_800_000 });
    h.commit({
      memberId: m.memberId,
      generationId: 1,
      offsets: [{ topic: "t", partition: 0, offset: 1 }, { topic: "old", partition: 0, offset: 1 }],
    });
    for (let i = 0; i < (8 * DAY) / (25 * 60_000); i++) {
      h.advance(25 * 60_000);
      h.heartbeat({ memberId: m.memberId, generationId: 1 });
    }
    assert.deepEqual(h.fetchAll(), ["t-0=1"]);
  });
  await t.step("an explicit v2-4 retention wins", () => {
    const h = new Harness(config);
    h.commit({
      version: 2,
      retentionTimeMs: 120_000n,
      offsets: [{ topic: "t", partition: 0, offset: 1 }],
    });
    h.advance(60_000);
    assert.deepEqual(h.fetchAll(), ["t-0=1"]);
    h.advance(60_000);
    assert.deepEqual(h.fetchAll(), []);
  });
});

Deno.test("GroupCoordinator: DescribeGroups", async (t) => {
  const h = new Harness();
  const a = h.stableSingle({ groupInstanceId: "i-1", clientId: "cid" });
  h.commit({ groupId: "simple", offsets: [{ topic: "t", partition: 0, offset: 1 }] });
  const describe = (groups: string[], v = 5, includeAuthorizedOperations = false) =>
    h.core.describeGroups(
      request(ApiKey.DescribeGroups, v, { groups, includeAuthorizedOperations }),
      v,
    ) as ResponseTypes[15];
  await t.step("a Stable group shows protocol, metadata and assignments", () => {
    assert.deepEqual(describe(["g"]).groups[0], {
      errorCode: 0,
      groupId: "g",
      groupState: "Stable",
      protocolType: "consumer",
      protocolData: "range",
      members: [{
        memberId: a.memberId,
        groupInstanceId: "i-1",
        clientId: "cid",
        clientHost: "/127.0.0.1",
        memberMetadata: subscription(["t"]),
        memberAssignment: new Uint8Array([1]),
      }],
      authorizedOperations: -2147483648,
    });
  });
  await t.step("authorized operations when asked (READ, DELETE, DESCRIBE)", () => {
    assert.equal(describe(["g"], 3, true).groups[0]!.authorizedOperations, 328);
  });
  await t.step("unknown groups are Dead; an offsets-only group is Empty", () => {
    const r = describe(["nope", "simple"], 0);
    assert.deepEqual(r.groups.map((g) => [g.groupId, g.groupState, g.protocolType, g.errorCode]), [
      ["nope", "Dead", "", 0],
      ["simple", "Empty", "", 0],
    ]);
    assert.equal("throttleTimeMs" in r, false);
  });
  await t.step("a rebalancing group hides metadata and protocol", () => {
    h.join({
      memberId: a.memberId,
      groupInstanceId: "i-1",
      protocols: [{ name: "range", metadata: subscription(["t", "u"]) }],
    });
    const g = describe(["g"]).groups[0]!;
    assert.equal(g.groupState, "CompletingRebalance");
    assert.equal(g.protocolData, "");
    assert.deepEqual(g.members[0]!.memberMetadata, new Uint8Array(0));
    assert.deepEqual(g.members[0]!.memberAssignment, new Uint8Array(0));
  });
});

Deno.test("GroupCoordinator: ListGroups with state and type filters", async (t) => {
  const h = new Harness();
  h.stableSingle({ groupId: "b" });
  h.commit({ groupId: "a", offsets: [{ topic: "t", partition: 0, offset: 1 }] });
  h.joinNew({ groupId: "c", version: 4 }); // CompletingRebalance
  const list = (v: number, statesFilter: string[] = [], typesFilter: string[] = []) =>
    h.core.listGroups(
      request(ApiKey.ListGroups, v, { statesFilter, typesFilter }),
      v,
    ) as ResponseTypes[16];
  const cases: [string, ResponseTypes[16], string[]][] = [
    ["v0 lists all", list(0), ["a:", "b:consumer", "c:consumer"]],
    ["v4 state filter", list(4, ["Stable", "Empty"]), ["a:", "b:consumer"]],
    ["v4 state filter is case-insensitive", list(4, ["completingrebalance"]), ["c:consumer"]],
    ["v5 type filter classic", list(5, [], ["Classic"]), ["a:", "b:consumer", "c:consumer"]],
    ["v5 type filter consumer (KIP-848)", list(5, [], ["consumer"]), []],
    ["v3 ignores filters it does not have", list(3, ["Dead"]), ["a:", "b:consumer", "c:consumer"]],
  ];
  for (const [name, r, expected] of cases) {
    await t.step(name, () => {
      assert.equal(r.errorCode, 0);
      assert.deepEqual(r.groups.map((g) => `${g.groupId}:${g.protocolType}`), expected);
    });
  }
  await t.step("v4+ states and v5 types are reported", () => {
    const r = list(5);
    assert.deepEqual(r.groups.map((g) => [g.groupState, g.groupType]), [
      ["Empty", "classic"],
      ["Stable", "classic"],
      ["CompletingRebalance", "classic"],
    ]);
    assert.equal("groupState" in list(3).groups[0]!, false);
  });
});

Deno.test("GroupCoordinator: DeleteGroups", async (t) => {
  const h = new Harness();
  h.stableSingle({ groupId: "live" });
  const gone = h.stableSingle({ groupId: "gone" });
  h.commit({
    groupId: "gone",
    memberId: gone.memberId,
    generationId: 1,
    offsets: [{ topic: "t", partition: 0, offset: 1 }, { topic: "t", partition: 1, offset: 2 }],
  });
  h.leave({ groupId: "gone", members: [{ memberId: gone.memberId }] });
  const r = h.deleteGroups(["gone", "live", "nope", "gone"]);
  await t.step("per-group results (duplicates answered once)", () => {
    assert.deepEqual(r.results.map((x) => [x.groupId, x.errorCode]), [
      ["gone", 0],
      ["live", ErrorCode.NON_EMPTY_GROUP],
      ["nope", ErrorCode.GROUP_ID_NOT_FOUND],
    ]);
  });
  await t.step("tombstones for every offset and the group", () => {
    assert.deepEqual(h.last.records, [
      { kind: "offset-tombstone", groupId: "gone", topic: "t", partition: 0 },
      { kind: "offset-tombstone", groupId: "gone", topic: "t", partition: 1 },
      { kind: "group-tombstone", groupId: "gone" },
    ]);
    assert.equal(h.core.group("gone"), undefined);
    assert.deepEqual(h.fetchAll("gone"), []);
  });
  await t.step("an offsets-only group can be deleted", () => {
    h.commit({ groupId: "simple", offsets: [{ topic: "t", partition: 0, offset: 1 }] });
    assert.equal(h.deleteGroups(["simple"], 0).results[0]!.errorCode, 0);
  });
});

Deno.test("GroupCoordinator: OffsetDelete", async (t) => {
  const h = new Harness();
  const m = h.stableSingle({
    groupId: "c",
    protocols: [{ name: "range", metadata: subscription(["t"], 1) }],
  });
  h.commit({
    groupId: "c",
    memberId: m.memberId,
    generationId: 1,
    offsets: [{ topic: "t", partition: 0, offset: 1 }, { topic: "u", partition: 0, offset: 1 }],
  });
  await t.step("a consumer group cannot delete offsets of subscribed topics", () => {
    const r = h.offsetDelete("c", [{ topic: "t", partitions: [0] }, {
      topic: "u",
      partitions: [0, 1],
    }]);
    assert.deepEqual(r, {
      errorCode: 0,
      throttleTimeMs: 0,
      topics: [
        {
          name: "t",
          partitions: [{ partitionIndex: 0, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC }],
        },
        {
          name: "u",
          partitions: [{ partitionIndex: 0, errorCode: 0 }, { partitionIndex: 1, errorCode: 0 }],
        },
      ],
    });
    assert.deepEqual(h.last.records, [{
      kind: "offset-tombstone",
      groupId: "c",
      topic: "u",
      partition: 0,
    }]);
    assert.deepEqual(h.fetchAll("c"), ["t-0=1"]);
  });
  await t.step("an Empty group deletes anything; with no offsets left it is removed", () => {
    h.leave({ groupId: "c", members: [{ memberId: m.memberId }] });
    const r = h.offsetDelete("c", [{ topic: "t", partitions: [0] }]);
    assert.equal(r.topics[0]!.partitions[0]!.errorCode, 0);
    assert.deepEqual(h.last.records.map((x) => x.kind), ["offset-tombstone", "group-tombstone"]);
    assert.equal(h.core.group("c"), undefined);
  });
  await t.step("group-level errors", () => {
    h.stableSingle({ groupId: "k", protocolType: "connect", protocols: [{ name: "v0" }] });
    const cases: [string, number][] = [["", 24], ["nope", 69], ["k", 68]];
    for (const [g, code] of cases) {
      const r = h.offsetDelete(g, [{ topic: "t", partitions: [0] }]);
      assert.equal(r.errorCode, code);
      assert.deepEqual(r.topics, []);
    }
  });
});

Deno.test("GroupCoordinator.unload() answers pending requests with NOT_COORDINATOR", () => {
  const h = new Harness();
  const { a, b } = h.stablePair();
  h.stableSingle({ groupId: "other-group" });
  const aj = h.join({ memberId: a });
  assert.equal(h.response(ApiKey.JoinGroup, aj), undefined);
  const p = groupPartition("g", 50);
  assert.notEqual(groupPartition("other-group", 50), p);
  const out = h.unload(p, 50);
  assert.equal(h.joinResponse(aj).errorCode, ErrorCode.NOT_COORDINATOR);
  assert.deepEqual(out.records, []);
  assert.equal(h.core.group("g"), undefined);
  assert.notEqual(h.core.group("other-group"), undefined);
  assert.equal(h.heartbeat({ memberId: b, generationId: 2 }), ErrorCode.UNKNOWN_MEMBER_ID);
});

Deno.test("GroupCoordinator.load() rebuilds groups from their records", async (t) => {
  const h = new Harness();
  const { a, b, generationId } = h.stablePair({ groupInstanceId: null });
  h.commit({
    memberId: a,
    generationId,
    offsets: [{ topic: "t", partition: 0, offset: 42, metadata: "x", leaderEpoch: 2 }],
  });
  h.commit({ groupId: "simple", offsets: [{ topic: "t", partition: 3, offset: 1 }] });
  const fresh = new GroupCoordinator(testConfig(), { random: new Random(9), log: silentLog });
  fresh.load(h.records, h.now + 5);
  await t.step("Stable with the persisted generation, leader, members and assignments", () => {
    const g = fresh.group("g")!;
    const orig = h.core.group("g")!;
    assert.equal(g.state, "Stable");
    assert.equal(g.generationId, generationId);
    assert.equal(g.leaderId, a);
    assert.deepEqual(
      g.members.map((m) => [m.memberId, m.assignment]),
      orig.members.map((m) => [m.memberId, m.assignment]),
    );
    assert.deepEqual(g.offsets, orig.offsets);
  });
  await t.step("offsets without group metadata make an Empty group", () => {
    assert.equal(fresh.group("simple")!.state, "Empty");
    assert.equal(fresh.group("simple")!.generationId, 0);
  });
  await t.step("sessions restart at load time", () => {
    assert.equal(fresh.nextDeadlineMs(), h.now + 5 + 10_000);
    const out = fresh.tick(h.now + 5 + 10_000);
    assert.deepEqual(out.responses, []);
    // Both sessions expire: the group empties into the next generation.
    assert.equal(fresh.group("g")!.state, "Empty");
    assert.equal(fresh.group("g")!.generationId, generationId + 1);
    assert.deepEqual(out.records.map((r) => r.kind), ["group"]);
    assert.ok(b);
  });
  await t.step("tombstones delete", () => {
    const f2 = new GroupCoordinator(testConfig(), { random: new Random(9), log: silentLog });
    f2.load([...h.records, { kind: "group-tombstone", groupId: "g" }, {
      kind: "offset-tombstone",
      groupId: "simple",
      topic: "t",
      partition: 3,
    }], T0);
    assert.deepEqual(f2.groupIds(), ["g"]);
    assert.equal(f2.group("g")!.state, "Empty", "offsets survive the group tombstone");
    assert.equal(f2.group("g")!.generationId, 0);
  });
  await t.step("a group over group.max.size rebalances on load", () => {
    const f3 = new GroupCoordinator(testConfig({ maxGroupSize: 1 }), {
      random: new Random(9),
      log: silentLog,
    });
    f3.load(h.records, h.now);
    assert.equal(f3.group("g")!.state, "PreparingRebalance");
  });
});

Deno.test("a deleted topic's committed offsets are removed from every group (tombstones)", () => {
  const h = new Harness();
  h.commit({
    offsets: [{ topic: "a", partition: 0, offset: 5 }, { topic: "b", partition: 0, offset: 7 }],
  });
  h.commit({ groupId: "only-a", offsets: [{ topic: "a", partition: 1, offset: 3 }] });
  const out = h.absorb(h.core.removeTopicOffsets(new Set(["a"]), h.now));
  assert.deepEqual(
    out.records.map((r) => [r.kind, r.groupId]).sort(),
    [["offset-tombstone", "g"], ["offset-tombstone", "only-a"]],
  );
  assert.deepEqual(h.fetchAll(), ["b-0=7"]);
  assert.deepEqual(h.fetchAll("only-a"), []);
});
