import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type EpochEndOffset,
  type EpochEntry,
  followerTruncationPoint,
  LeaderEpochCache,
  type TruncationState,
} from "../../../lib/replication/mod.ts";

function e(epoch: number, startOffset: number): EpochEntry {
  return { epoch, startOffset };
}

Deno.test("followerTruncationPoint() follows getOffsetTruncationState", async (t) => {
  const cases: {
    name: string;
    follower: EpochEntry[];
    leo: number;
    hw: number;
    answer: EpochEndOffset;
    expected: TruncationState;
  }[] = [
    {
      // KIP-101 scenario 1: B restarted with HW 1 behind its log end 2; truncating to
      // the HW lost m2 once A died. With epochs, A says epoch 0 runs to 2: keep all.
      name: "KIP-101 data loss case: nothing is truncated below the leader's end",
      follower: [e(0, 0)],
      leo: 2,
      hw: 1,
      answer: { epoch: 0, endOffset: 2 },
      expected: { offset: 2, completed: true },
    },
    {
      // KIP-101 scenario 2: A wrote m1, m2 in epoch 0; B (m1 only) became leader in
      // epoch 1 and wrote m3 at offset 1. A must drop m2.
      name: "KIP-101 divergence case: truncate where the leader's epoch 0 ends",
      follower: [e(0, 0)],
      leo: 2,
      hw: 1,
      answer: { epoch: 0, endOffset: 1 },
      expected: { offset: 1, completed: true },
    },
    {
      name: "the follower's epoch ends first: truncate to its own end of that epoch",
      follower: [e(0, 0), e(2, 5)],
      leo: 8,
      hw: 0,
      answer: { epoch: 0, endOffset: 7 },
      expected: { offset: 5, completed: true },
    },
    {
      name: "a leader end past the follower's log end truncates nothing",
      follower: [e(0, 0), e(1, 3)],
      leo: 6,
      hw: 0,
      answer: { epoch: 1, endOffset: 9 },
      expected: { offset: 6, completed: true },
    },
    {
      // KIP-279: follower epochs 0 (0-4) and 2 (5-7); leader epochs 0 (0-2), 1 (3-5), 3.
      // Asked for 2, the leader answers (1, 6); the follower lacks epoch 1.
      name: "KIP-279 unknown epoch: truncate to the older epoch's end and ask again",
      follower: [e(0, 0), e(2, 5)],
      leo: 8,
      hw: 0,
      answer: { epoch: 1, endOffset: 6 },
      expected: { offset: 5, completed: false },
    },
    {
      name: "KIP-279 second round: asked for 0 the leader answers (0, 3)",
      follower: [e(0, 0)],
      leo: 5,
      hw: 0,
      answer: { epoch: 0, endOffset: 3 },
      expected: { offset: 3, completed: true },
    },
    {
      name: "UNDEFINED answer: fall back to the high watermark",
      follower: [e(4, 10)],
      leo: 20,
      hw: 12,
      answer: { epoch: -1, endOffset: -1 },
      expected: { offset: 12, completed: true },
    },
    {
      name: "UNDEFINED answer with the HW past the log end: nothing to truncate",
      follower: [],
      leo: 3,
      hw: 5,
      answer: { epoch: -1, endOffset: -1 },
      expected: { offset: 3, completed: true },
    },
    {
      name: "v0 answer (offset, no epoch): the leader's offset",
      follower: [e(0, 0)],
      leo: 9,
      hw: 0,
      answer: { epoch: -1, endOffset: 4 },
      expected: { offset: 4, completed: true },
    },
    {
      name: "the follower's epochs all start later: below its earliest start (Kafka)",
      follower: [e(3, 10), e(5, 14)],
      leo: 18,
      hw: 0,
      answer: { epoch: 2, endOffset: 12 },
      expected: { offset: 10, completed: true },
    },
    {
      name: "an empty follower cache: the leader's offset",
      follower: [],
      leo: 18,
      hw: 0,
      answer: { epoch: 2, endOffset: 12 },
      expected: { offset: 12, completed: true },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.deepEqual(
        followerTruncationPoint({
          followerEntries: c.follower,
          followerLeo: c.leo,
          followerHw: c.hw,
          leaderAnswer: c.answer,
        }),
        c.expected,
      );
    });
  }
});

/** A record of the model: a unique id and the epoch of the leader that wrote it. */
interface Rec {
  id: number;
  epoch: number;
}

/** One replica of the model: its records by offset, and its epoch cache. */
interface Replica {
  log: Rec[];
  cache: LeaderEpochCache;
}

type Event =
  | { kind: "elect"; replica: number }
  | { kind: "append"; count: number }
  | { kind: "sync"; replica: number; count: number }
  | { kind: "crash"; replica: number; lose: number };

const REPLICAS = 3;

const event: fc.Arbitrary<Event> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("elect" as const), replica: fc.nat(REPLICAS - 1) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      count: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("sync" as const),
      replica: fc.nat(REPLICAS - 1),
      count: fc.nat(6),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("crash" as const),
      replica: fc.nat(REPLICAS - 1),
      lose: fc.nat(3),
    }),
  },
);

/** The length of the longest common prefix of two logs (the same records). */
function commonPrefix(a: Rec[], b: Rec[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i]!.id === b[i]!.id) i++;
  return i;
}

/**
 * Runs the follower side of the protocol against `leader` until completed: ask for the
 * end of the latest epoch, truncate, repeat. Returns the final log end.
 */
function truncateAgainst(follower: Replica, leader: Replica): number {
  for (let round = 0; round < 100; round++) {
    const answer = leader.cache.endOffsetFor(follower.cache.latestEpoch, leader.log.length);
    const st = followerTruncationPoint({
      followerEntries: follower.cache.entries,
      followerLeo: follower.log.length,
      followerHw: 0,
      leaderAnswer: answer,
    });
    assert.ok(st.offset >= 0 && st.offset <= follower.log.length);
    follower.log.length = Math.min(follower.log.length, st.offset);
    follower.cache.truncateFromEnd(follower.log.length);
    if (st.completed) return follower.log.length;
  }
  throw new Error("Truncation did not complete in 100 rounds");
}

Deno.test("followerTruncationPoint() keeps the common prefix and removes the rest (property)", () => {
  fc.assert(
    fc.property(fc.array(event, { minLength: 10, maxLength: 80 }), (events) => {
      const replicas: Replica[] = Array.from(
        { length: REPLICAS },
        () => ({ log: [], cache: new LeaderEpochCache() }),
      );
      let leader = 0;
      let epoch = 0;
      let nextId = 0;
      replicas[0]!.cache.assign(0, 0);
      // Followers that truncated against the current leader and may fetch from it.
      const synced = new Set<number>([0]);
      for (const ev of events) {
        const l = replicas[leader]!;
        switch (ev.kind) {
          case "elect": {
            // Any replica may win (unclean elections included), to make logs diverge.
            epoch++;
            leader = ev.replica;
            replicas[leader]!.cache.assign(epoch, replicas[leader]!.log.length);
            synced.clear();
            synced.add(leader);
            break;
          }
          case "append":
            for (let i = 0; i < ev.count; i++) l.log.push({ id: nextId++, epoch });
            break;
          case "sync": {
            const f = replicas[ev.replica]!;
            if (ev.replica === leader) break;
            if (!synced.has(ev.replica)) {
              const before = f.log.slice();
              const prefix = commonPrefix(before, l.log);
              const end = truncateAgainst(f, l);
              // Never drops a record both logs hold with the same epoch...
              assert.equal(end, prefix, `kept ${end}, common prefix ${prefix}`);
              // ...and what is left is the leader's log: no foreign epoch survives.
              assert.deepEqual(f.log, l.log.slice(0, end));
              synced.add(ev.replica);
            }
            // Fetch: copy records, assigning epochs as Kafka's appendAsFollower does.
            for (let i = 0; i < ev.count && f.log.length < l.log.length; i++) {
              const offset = f.log.length;
              const rec = l.log[offset]!;
              f.log.push(rec);
              f.cache.assign(rec.epoch, offset);
            }
            break;
          }
          case "crash": {
            // Unflushed records are lost; the epoch cache is reconciled with the log.
            const r = replicas[ev.replica]!;
            r.log.length = Math.max(0, r.log.length - ev.lose);
            r.cache.truncateFromEnd(r.log.length);
            if (ev.replica === leader) {
              // The controller re-elects the restarted leader in a new epoch: its
              // followers may hold records it lost, so they truncate again.
              epoch++;
              r.cache.assign(epoch, r.log.length);
              synced.clear();
              synced.add(leader);
            } else synced.delete(ev.replica);
            break;
          }
        }
      }
    }),
    { numRuns: 1000 },
  );
});
