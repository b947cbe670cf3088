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

Deno.test({
  name:
    "sim: a replica that led an epoch without appending anything rejoins the ISR as a follower (its epoch cache is trimmed at the log end)",
  ...opts,
  fn: async () => {
    // Replicas [p, q, r], r the controller, preferred-leader elections on. p leads epoch 0;
    // paused, it loses the lead to q (epoch 1); back, it rejoins q's ISR, and is then cut
    // from q while q appends epoch-1 records (acks=1) that only r fetches. The preferred
    // election gives p epoch 2 (p appends nothing; q cannot reach it to truncate), and p
    // is paused at once: q leads epoch 3. p, resumed, asks OffsetForLeaderEpoch(2); q
    // answers epoch 1, which p lacks, so p's truncation point is its own log end. Unless
    // the epoch cache drops epoch 2 there (Kafka's truncateTo → truncateFromEnd), p asks
    // about epoch 2 forever and never rejoins the ISR (issue 10 §1.2).
    const s = await Scenario.start({ seed: 3, leaderImbalanceCheckIntervalMs: 300 }, {
      replicas: (controller) => [...[1, 2, 3].filter((id) => id !== controller), controller],
    });
    try {
      const { sim } = s;
      const state = () => latestImage(sim)?.topic(TOPIC)?.partitions[0];
      const machine = (id: number) => sim.machines.find((m) => m.id === id)!;
      const [p, q] = state()!.replicas.map(machine);
      const leadsFully = (m: typeof p) => () =>
        state()?.leader === m!.id && state()?.isr.length === 3;
      await s.produce(0, 5);
      await s.runUntil(leadsFully(p), 30_000, "p to lead with a full ISR");
      sim.disturb("the test's SIGSTOP", [p!.id]);
      p!.proc!.pause();
      await s.runUntil(() => state()?.leader === q!.id, 30_000, "q to lead");
      p!.proc!.resume();
      await s.runUntil(leadsFully(q), 30_000, "p back in q's ISR");
      sim.disturb("the test's cut", [p!.id, q!.id]);
      sim.net.cut(`n${p!.id}`, `n${q!.id}`, KAFKA_PORT);
      sim.net.cut(`n${q!.id}`, `n${p!.id}`, KAFKA_PORT);
      const stop = s.acksOneProducer(0);
      const pPart = () => p!.parts!.replicas.getPartition(TOPIC, 0)!;
      await s.runUntil(
        () => pPart().isLeader && pPart().leaderEpochCache.latestEpoch === pPart().leaderEpoch,
        30_000,
        "p to lead after the preferred election",
      );
      p!.proc!.pause();
      stop();
      const qLog = q!.parts!.replicas.getPartition(TOPIC, 0)!.log;
      const pLog = p!.parts!.replicas.getPartition(TOPIC, 0)!.log;
      assert.ok(qLog.logEndOffset > pLog.logEndOffset, "q holds epoch-1 records p lacks");
      await s.runUntil(() => state()?.leader === q!.id, 30_000, "q to lead while p is paused");
      sim.net.healAll();
      p!.proc!.resume();
      await s.runUntil(leadsFully(q), 30_000, "p to rejoin the ISR as q's follower");
    } finally {
      s.close();
    }
  },
});

Deno.test({
  name:
    "sim: a SIGTERM while the disk fails every fsync ends the process, without an unhandled rejection",
  ...opts,
  fn: async () => {
    for (const seed of [4, 5, 6]) {
      const s = await Scenario.start({ seed });
      const unhandled: string[] = [];
      const onUnhandled = (e: PromiseRejectionEvent) => {
        e.preventDefault();
        unhandled.push(String(e.reason));
      };
      globalThis.addEventListener("unhandledrejection", onUnhandled);
      try {
        const { sim } = s;
        await s.produce(0, 5);
        const m = sim.machines[seed % 3]!;
        const proc = m.proc;
        // The last flushes of the shutdown fail (sim seed 1008).
        sim.setFailingDisk(m, 1);
        sim.shutdown(m);
        await s.runUntil(() => proc?.state === "dead", 30_000, "the process to end");
        await s.run(100);
        assert.deepEqual(unhandled, [], `seed ${seed}`);
      } finally {
        globalThis.removeEventListener("unhandledrejection", onUnhandled);
        s.close();
      }
    }
  },
});

Deno.test({
  name:
    "sim: a leader in a controlled shutdown that has lost the quorum stops leading within its session (seed 1395)",
  ...opts,
  fn: async () => {
    for (const seed of [1, 2, 3]) {
      // The leader is not the controller, so its heartbeats need the network.
      const s = await Scenario.start({ seed }, {
        replicas: (controller) => {
          const others = [1, 2, 3].filter((id) => id !== controller);
          return [others[0]!, controller, others[1]!];
        },
      });
      try {
        const { sim } = s;
        await s.produce(0, 5);
        const leaderId = latestImage(sim)!.topic(TOPIC)!.partitions[0]!.leader;
        const leader = sim.machines.find((m) => m.id === leaderId)!;
        const partition = () => leader.parts?.replicas.getPartition(TOPIC, 0);
        assert.equal(partition()?.isLeader, true);
        // Nothing it sends arrives: neither its heartbeats nor its shutdown request, so
        // the controlled shutdown waits out its timeout (5 s) while the controller fences
        // it and names another leader.
        sim.disturb("the test's cuts", "all");
        for (const o of sim.machines) if (o !== leader) sim.net.cut(`n${leader.id}`, `n${o.id}`);
        const proc = leader.proc;
        sim.shutdown(leader);
        await s.runUntil(
          () => partition()?.isLeader !== true || proc?.state === "dead",
          4000,
          "the shutting-down leader to stop leading",
        );
        assert.notEqual(proc?.state, "dead", `seed ${seed}: stopped leading only by exiting`);
      } finally {
        s.close();
      }
    }
  },
});
