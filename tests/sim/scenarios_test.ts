/**
 * Regression tests on the simulated cluster, one scripted fault each, for defects the
 * whole-cluster simulation found (the per-event invariants of tests/sim/_cluster/checkers.ts
 * run all along: a leader's high watermark never passes a committed ISR member's durable
 * end, one leader per epoch, I5).
 */
import assert from "node:assert/strict";
import { latestImage } from "./_cluster/checkers.ts";
import { KAFKA_PORT, TOPIC } from "./_cluster/cluster_sim.ts";
import { Scenario } from "./_cluster/scenario.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "sim: a power loss of every node at once loses no acknowledged write (new directories are fsynced into their parents)",
  ...opts,
  fn: async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const s = await Scenario.start({ seed });
      try {
        await s.produce(0, 30);
        for (const m of s.sim.machines) s.sim.crash(m, true);
        await s.run(200);
        for (const m of s.sim.machines) s.sim.start(m);
        await s.allUp();
        assert.deepEqual(await s.missing(0), [], `seed ${seed}`);
      } finally {
        s.close();
      }
    }
  },
});

Deno.test({
  name:
    "sim: a follower restarted from a metadata image older than its topic keeps the topic's partition folders",
  ...opts,
  fn: async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const s = await Scenario.start({ seed });
      try {
        await s.produce(0, 20);
        // The follower's Raft commit index on disk may lag what it applied, so it can
        // restart from an image without the topic whose replica it holds.
        const follower = s.sim.machines.find((m) =>
          ![...(m.parts?.replicas.partitions() ?? [])].some((p) => p.isLeader)
        )!;
        s.sim.crash(follower, true);
        await s.run(100);
        s.sim.start(follower);
        await s.allUp();
        await s.produce(0, 5, "after");
        assert.deepEqual(await s.missing(0), [], `seed ${seed}`);
      } finally {
        s.close();
      }
    }
  },
});

Deno.test({
  name:
    "sim: after an unclean election the new leader reports RECOVERED and the ISR grows again (KIP-704)",
  ...opts,
  fn: async () => {
    const s = await Scenario.start({ seed: 7, uncleanLeaderElection: true, minInsync: 1 }, {
      leaderOnController: true,
    });
    try {
      await s.produce(0, 10);
      const { sim } = s;
      const state = () => latestImage(sim)?.topic(TOPIC)?.partitions[0];
      const leader = sim.machines.find((m) => m.id === state()!.leader)!;
      const others = sim.machines.filter((m) => m !== leader);
      // The leader is the controller; its followers lose their Kafka links to it, so they
      // are fenced and the ISR shrinks to the leader alone; then the leader dies and only
      // out-of-sync replicas are left.
      sim.disturb("the test's cuts", "all");
      for (const o of others) {
        sim.net.cut(`n${leader.id}`, `n${o.id}`, KAFKA_PORT);
        sim.net.cut(`n${o.id}`, `n${leader.id}`, KAFKA_PORT);
      }
      await s.runUntil(() => state()?.isr.length === 1, 30_000, "the ISR to shrink to the leader");
      sim.crash(leader, false);
      sim.net.healAll();
      await s.runUntil(
        () =>
          state()?.leaderRecoveryState === 1 ||
          state()?.leaderRecoveryState === 0 && state()!.leader !== leader.id &&
            state()!.leader !== -1,
        30_000,
        "an unclean election",
      );
      await s.runUntil(
        () => state()?.leaderRecoveryState === 0 && state()!.leader !== -1,
        30_000,
        "RECOVERED",
      );
      sim.start(leader);
      await s.runUntil(() => state()?.isr.length === 3, 60_000, "the ISR to grow back to 3");
      assert.equal(state()!.leaderRecoveryState, 0);
    } finally {
      s.close();
    }
  },
});
