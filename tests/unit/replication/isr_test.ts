import assert from "node:assert/strict";
import {
  type FollowerState,
  isrDecisions,
  newFollowerState,
  updateFollowerFetchState,
} from "../../../lib/replication/mod.ts";

function f(id: number, logEndOffset: number, lastCaughtUpTimeMs: number): FollowerState {
  return {
    id,
    logEndOffset,
    lastCaughtUpTimeMs,
    lastFetchTimeMs: 0,
    lastFetchLeaderLogEndOffset: -1,
  };
}

Deno.test("isrDecisions() shrinks lagging followers and expands caught-up ones", async (t) => {
  const base = {
    leaderId: 1,
    leaderEnd: 100,
    hw: 90,
    leaderEpochStartOffset: 80,
    nowMs: 10_000,
    replicaLagTimeMaxMs: 5_000,
  };
  const cases: {
    name: string;
    isr: number[];
    replicas: number[];
    followers: FollowerState[];
    ineligible?: number[];
    shrink: number[];
    expand: number[];
  }[] = [
    {
      name: "all caught up: nothing changes",
      isr: [1, 2, 3],
      replicas: [1, 2, 3],
      followers: [f(2, 100, 0), f(3, 95, 9_000)],
      shrink: [],
      expand: [],
    },
    {
      name: "at the leader's end counts as caught up whatever the time",
      isr: [1, 2],
      replicas: [1, 2],
      followers: [f(2, 100, 0)],
      shrink: [],
      expand: [],
    },
    {
      name: "caught up exactly replicaLagTimeMaxMs ago stays",
      isr: [1, 2],
      replicas: [1, 2],
      followers: [f(2, 50, 5_000)],
      shrink: [],
      expand: [],
    },
    {
      name: "caught up longer ago than the lag time is removed",
      isr: [1, 2, 3],
      replicas: [1, 2, 3],
      followers: [f(2, 99, 4_999), f(3, 100, 0)],
      shrink: [2],
      expand: [],
    },
    {
      name: "an ISR follower with no state is out of sync",
      isr: [1, 2, 3],
      replicas: [1, 2, 3],
      followers: [f(3, 100, 0)],
      shrink: [2],
      expand: [],
    },
    {
      name: "the leader is never removed",
      isr: [1],
      replicas: [1, 2],
      followers: [f(1, 0, 0)],
      shrink: [],
      expand: [],
    },
    {
      name: "a follower at the HW and past the epoch start joins",
      isr: [1],
      replicas: [1, 2, 3],
      followers: [f(2, 90, 0), f(3, 89, 9_999)],
      shrink: [],
      expand: [2],
    },
    {
      name: "a follower below the leader epoch start does not join (isFollowerInSync)",
      isr: [1],
      replicas: [1, 2],
      followers: [f(2, 79, 0)],
      shrink: [],
      expand: [],
    },
    {
      name: "only assigned, eligible replicas join",
      isr: [1],
      replicas: [1, 2, 3],
      followers: [f(2, 100, 0), f(3, 100, 0), f(4, 100, 0)],
      ineligible: [3],
      shrink: [],
      expand: [2],
    },
    {
      name: "shrink and expand together",
      isr: [1, 2],
      replicas: [1, 2, 3],
      followers: [f(2, 10, 0), f(3, 100, 0)],
      shrink: [2],
      expand: [3],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const d = isrDecisions({
        ...base,
        isr: c.isr,
        replicas: c.replicas,
        followers: c.followers,
        ...(c.ineligible ? { ineligible: c.ineligible } : {}),
      });
      assert.deepEqual(d, { shrink: c.shrink, expand: c.expand });
    });
  }
  await t.step("an epoch start above the HW gates expansion (HW below it)", () => {
    const d = isrDecisions({
      ...base,
      hw: 70,
      isr: [1],
      replicas: [1, 2],
      followers: [f(2, 75, 0)],
    });
    assert.deepEqual(d.expand, []);
  });
});

Deno.test("updateFollowerFetchState() tracks lastCaughtUpTimeMs as Kafka's Replica", async (t) => {
  const start = newFollowerState(2, { inIsr: true, nowMs: 1_000 });
  await t.step("a new leader counts ISR members caught up now, others never", () => {
    assert.equal(start.lastCaughtUpTimeMs, 1_000);
    assert.equal(newFollowerState(3, { inIsr: false, nowMs: 1_000 }).lastCaughtUpTimeMs, 0);
    assert.equal(start.logEndOffset, -1);
  });
  const steps: [string, { fetchOffset: number; fetchTimeMs: number; leaderEnd: number }, number][] =
    [
      ["reaching the leader's end: caught up at this fetch", {
        fetchOffset: 50,
        fetchTimeMs: 2_000,
        leaderEnd: 50,
      }, 2_000],
      ["behind the leader's end now and then: unchanged", {
        fetchOffset: 40,
        fetchTimeMs: 3_000,
        leaderEnd: 60,
      }, 2_000],
      ["reaching the leader's end of the previous fetch: caught up then", {
        fetchOffset: 60,
        fetchTimeMs: 4_000,
        leaderEnd: 70,
      }, 3_000],
      ["never moves back", { fetchOffset: 10, fetchTimeMs: 5_000, leaderEnd: 80 }, 3_000],
    ];
  let state = start;
  for (const [name, fetch, expected] of steps) {
    await t.step(name, () => {
      state = updateFollowerFetchState(state, fetch);
      assert.equal(state.lastCaughtUpTimeMs, expected);
      assert.equal(state.logEndOffset, fetch.fetchOffset);
      assert.equal(state.lastFetchTimeMs, fetch.fetchTimeMs);
    });
  }
});
