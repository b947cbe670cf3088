/**
 * Regression tests on the simulated cluster, one scripted fault each, for defects the
 * whole-cluster simulation found (the per-event invariants of tests/sim/_cluster/checkers.ts
 * run all along: a leader's high watermark never passes a committed ISR member's durable
 * end, one leader per epoch, I5).
 */
import assert from "node:assert/strict";
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
