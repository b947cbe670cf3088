/**
 * Property: after any sequence of group events, replaying every emitted record with load()
 * reproduces the committed offsets of every group, and the generation, leader, protocol and
 * members of every Stable or Empty group; and no request is ever left without a response.
 * GROUP_PROP_SEED=n replays one run.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ApiKey } from "../../../lib/protocol/mod.ts";
import { GroupCoordinator, type GroupSnapshot } from "../../../lib/group/mod.ts";
import { Random } from "../../../lib/util/random.ts";
import { Harness, silentLog, subscription, testConfig } from "./_harness.ts";

const seedEnv = Deno.env.get("GROUP_PROP_SEED");
const seed = seedEnv === undefined ? undefined : Number(seedEnv);

const GROUPS = ["g1", "g2"] as const;
const CLIENTS = 4; // client 3 is static ("i-3")

type Op =
  | { kind: "join"; c: number; g: number; fresh: boolean; version: number; proto: number }
  | { kind: "sync"; c: number; g: number; stale: boolean }
  | { kind: "everyone"; g: number; what: "join" | "sync" | "heartbeat" }
  | { kind: "heartbeat"; c: number; g: number }
  | { kind: "leave"; c: number; g: number; byInstance: boolean }
  | {
    kind: "commit";
    c: number;
    g: number;
    simple: boolean;
    topic: number;
    partition: number;
    offset: number;
  }
  | { kind: "advance"; ms: number }
  | { kind: "delete"; g: number }
  | { kind: "offsetDelete"; g: number; topic: number };

const c = fc.integer({ min: 0, max: CLIENTS - 1 });
const g = fc.integer({ min: 0, max: GROUPS.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("join" as const),
      c,
      g,
      fresh: fc.boolean(),
      version: fc.constantFrom(3, 4, 5, 8, 9),
      proto: fc.integer({ min: 0, max: 2 }),
    }, { noNullPrototype: true }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("sync" as const), c, g, stale: fc.boolean() }, {
      noNullPrototype: true,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("heartbeat" as const), c, g }, {
      noNullPrototype: true,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("leave" as const), c, g, byInstance: fc.boolean() }, {
      noNullPrototype: true,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("commit" as const),
      c,
      g,
      simple: fc.boolean(),
      topic: fc.integer({ min: 0, max: 2 }),
      partition: fc.integer({ min: 0, max: 2 }),
      offset: fc.integer({ min: 0, max: 1000 }),
    }, { noNullPrototype: true }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 40_000 }),
    }, { noNullPrototype: true }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("delete" as const), g }, { noNullPrototype: true }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("offsetDelete" as const),
      g,
      topic: fc.integer({ min: 0, max: 2 }),
    }, { noNullPrototype: true }),
  },
);

const TOPICS = ["t", "u", "v"];
const PROTOCOLS = [
  [{ name: "range", metadata: subscription(["t"]) }],
  [{ name: "range", metadata: subscription(["t", "u"]) }, {
    name: "rr",
    metadata: subscription(["t"]),
  }],
  [{ name: "rr", metadata: subscription(["u"]) }],
];

/** What a client believes about its membership of a group. */
interface View {
  memberId: string;
  generationId: number;
  leader: boolean;
  members: string[];
  protocolName: string | null;
}

function run(ops: Op[], initialDelay: number, sessionMs: number): void {
  const h = new Harness(
    testConfig({
      initialRebalanceDelayMs: initialDelay,
      offsetsRetentionMs: 600_000,
      offsetsRetentionCheckIntervalMs: 60_000,
    }),
    7,
  );
  const views = new Map<string, View>();
  const key = (ci: number, gi: number) => `${ci}/${gi}`;
  const joins = new Map<number, string>(); // join request id -> view key
  const absorbJoins = () => {
    for (const [id, k] of joins) {
      const r = h.response(ApiKey.JoinGroup, id);
      if (r === undefined) continue;
      joins.delete(id);
      if (r.errorCode === 0) {
        views.set(k, {
          memberId: r.memberId,
          generationId: r.generationId,
          leader: r.leader === r.memberId,
          members: r.members.map((m) => m.memberId),
          protocolName: r.protocolName,
        });
      } else if (r.errorCode === 79) {
        views.set(k, {
          memberId: r.memberId,
          generationId: -1,
          leader: false,
          members: [],
          protocolName: null,
        });
      } else if (r.errorCode === 25 || r.errorCode === 82) {
        views.delete(k);
      }
    }
  };
  const apply = (op: Op): void => {
    switch (op.kind) {
      case "join": {
        const k = key(op.c, op.g);
        const isStatic = op.c === 3 && op.version >= 5;
        const memberId = op.fresh ? "" : views.get(k)?.memberId ?? "";
        const id = h.join({
          groupId: GROUPS[op.g]!,
          memberId,
          groupInstanceId: isStatic ? "i-3" : null,
          version: op.version,
          clientId: `c${op.c}`,
          sessionTimeoutMs: sessionMs,
          rebalanceTimeoutMs: 20_000,
          protocols: PROTOCOLS[op.proto],
        });
        joins.set(id, k);
        break;
      }
      case "sync": {
        const v = views.get(key(op.c, op.g));
        if (v === undefined) break;
        h.sync({
          groupId: GROUPS[op.g]!,
          memberId: v.memberId,
          generationId: op.stale ? v.generationId - 1 : v.generationId,
          groupInstanceId: op.c === 3 ? "i-3" : null,
          version: 3,
          assignments: v.leader
            ? v.members.map((m, i) => ({ memberId: m, assignment: new Uint8Array([i, op.c]) }))
            : [],
        });
        break;
      }
      case "heartbeat": {
        const v = views.get(key(op.c, op.g));
        if (v !== undefined) {
          h.heartbeat({
            groupId: GROUPS[op.g]!,
            memberId: v.memberId,
            generationId: v.generationId,
          });
        }
        break;
      }
      case "leave": {
        const v = views.get(key(op.c, op.g));
        if (op.byInstance && op.c === 3) {
          h.leave({ groupId: GROUPS[op.g]!, members: [{ memberId: "", groupInstanceId: "i-3" }] });
        } else if (v !== undefined) {
          h.leave({
            groupId: GROUPS[op.g]!,
            memberId: v.memberId,
            members: [{ memberId: v.memberId }],
            version: op.c % 2 === 0 ? 1 : 4,
          });
        }
        break;
      }
      case "commit": {
        const v = views.get(key(op.c, op.g));
        h.commit({
          groupId: GROUPS[op.g]!,
          memberId: op.simple || v === undefined ? "" : v.memberId,
          generationId: op.simple || v === undefined ? -1 : v.generationId,
          offsets: [{
            topic: TOPICS[op.topic]!,
            partition: op.partition,
            offset: op.offset,
            metadata: op.offset % 3 === 0 ? null : `m${op.offset}`,
          }],
        });
        break;
      }
      case "advance":
        h.advance(op.ms);
        break;
      case "delete":
        h.deleteGroups([GROUPS[op.g]!]);
        break;
      case "offsetDelete":
        h.offsetDelete(GROUPS[op.g]!, [{ topic: TOPICS[op.topic]!, partitions: [0, 1, 2] }]);
        break;
      case "everyone":
        for (let ci = 0; ci < CLIENTS; ci++) {
          if (!views.has(key(ci, op.g))) continue;
          if (op.what === "join") {
            apply({ kind: "join", c: ci, g: op.g, fresh: false, version: 9, proto: 0 });
          } else if (op.what === "sync") {
            apply({ kind: "sync", c: ci, g: op.g, stale: false });
          } else {
            apply({ kind: "heartbeat", c: ci, g: op.g });
          }
        }
        break;
    }
    absorbJoins();
  };

  for (const op of ops) {
    apply(op);
    checkLoad(h);
  }

  // Every request is eventually answered: losing the partitions answers the rest.
  for (const [, sent] of h.waiting) {
    assert.ok(sent.apiKey === ApiKey.JoinGroup || sent.apiKey === ApiKey.SyncGroup);
  }
  for (let p = 0; p < 50; p++) h.unload(p, 50);
  assert.equal(h.waiting.size, 0, "requests left without a response");
  assert.deepEqual(h.core.groupIds(), []);
  assert.equal(h.core.nextDeadlineMs(), null);
}

/** load() of everything emitted so far reproduces the persisted state. */
function checkLoad(h: Harness): void {
  const fresh = new GroupCoordinator(testConfig(), { random: new Random(1), log: silentLog });
  fresh.load(h.records, h.now);
  for (const id of fresh.groupIds()) {
    assert.ok(h.core.group(id) !== undefined, `loaded group ${id} does not exist`);
  }
  for (const id of h.core.groupIds()) {
    const orig = h.core.group(id)!;
    const loaded = fresh.group(id);
    assert.deepEqual(loaded?.offsets ?? [], orig.offsets, `offsets of ${id}`);
    const persisted = orig.generationId > 0 || orig.offsets.length > 0;
    if ((orig.state === "Stable" || orig.state === "Empty") && persisted) {
      assert.ok(loaded !== undefined, `group ${id} (${orig.state}) not loaded`);
      assert.deepEqual(summary(loaded), summary(orig), `group ${id}`);
    }
  }
}

function summary(gs: GroupSnapshot) {
  return {
    state: gs.state,
    generationId: gs.generationId,
    protocolType: gs.protocolType,
    protocolName: gs.protocolName,
    leaderId: gs.leaderId,
    members: gs.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      sessionTimeoutMs: m.sessionTimeoutMs,
      assignment: m.assignment,
      metadata: m.protocols.find((p) => p.name === gs.protocolName)?.metadata ?? null,
    })),
  };
}

Deno.test("GroupCoordinator property: load(records) reproduces offsets and Stable/Empty groups", () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 1, maxLength: 150, size: "large" }),
      fc.constantFrom(0, 3_000),
      fc.constantFrom(6_000, 15_000, 60_000),
      (ops, delay, session) => run(ops, delay, session),
    ),
    { seed, numRuns: 500 },
  );
});

Deno.test("GroupCoordinator property: a busy scripted scenario replays", () => {
  // A deterministic long run that reaches Stable groups with several members.
  const ops: Op[] = [];
  for (let round = 0; round < 6; round++) {
    for (let ci = 0; ci < CLIENTS; ci++) {
      ops.push({ kind: "join", c: ci, g: round % 2, fresh: false, version: 9, proto: 0 });
    }
    for (let ci = 0; ci < CLIENTS; ci++) {
      ops.push({ kind: "join", c: ci, g: round % 2, fresh: false, version: 9, proto: 0 });
    }
    ops.push({ kind: "advance", ms: 3_000 });
    for (let ci = 0; ci < CLIENTS; ci++) {
      ops.push({ kind: "sync", c: ci, g: round % 2, stale: false });
    }
    for (let ci = 0; ci < CLIENTS; ci++) {
      ops.push({
        kind: "commit",
        c: ci,
        g: round % 2,
        simple: false,
        topic: ci % 3,
        partition: ci,
        offset: round * 10 + ci,
      });
    }
    if (round === 3) ops.push({ kind: "leave", c: 1, g: 1, byInstance: false });
  }
  run(ops, 3_000, 60_000);
});
