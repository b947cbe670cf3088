/**
 * Controlled shutdown and preferred-leader election on three real processes: SIGTERM to
 * a broker moves its leaderships to other ISR members before the process exits (no
 * produce sees a leaderless partition), SIGTERM to the controller hands the controller
 * role over, and a broker that comes back gets its preferred partitions back (Kafka's
 * auto.leader.rebalance) once it is in their ISRs again.
 */
import assert from "node:assert/strict";
import { ApiKey } from "../../lib/protocol/mod.ts";
import { TestCluster } from "../_helpers/cluster.ts";
import { oneRecordProduce } from "../_helpers/produce.ts";

const TOPIC = "graceful";
const PARTITIONS = 6;

interface PartitionView {
  leader: number;
  isr: number[];
  replicas: number[];
}

async function partitions(cluster: TestCluster, via: number): Promise<PartitionView[]> {
  const md = await cluster.metadata(via, [TOPIC]);
  const t = md.topics.find((x) => x.name === TOPIC)!;
  return [...t.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex).map((p) => ({
    leader: p.leaderId,
    isr: [...p.isrNodes],
    replicas: [...p.replicaNodes],
  }));
}

/** Produces one acks=all record to every partition through its leader; returns the codes. */
async function produceEverywhere(cluster: TestCluster, via: number): Promise<number[]> {
  const view = await partitions(cluster, via);
  const codes: number[] = [];
  for (const [i, p] of view.entries()) {
    const conn = await cluster.connect(p.leader);
    try {
      const r = await conn.request(ApiKey.Produce, 9, oneRecordProduce(TOPIC, i, `v${i}`));
      codes.push(r.responses[0]!.partitionResponses[0]!.errorCode);
    } finally {
      await conn.close();
    }
  }
  return codes;
}

Deno.test({
  name: "controlled shutdown moves leaderships before exit; preferred leaders come back",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using cluster = await TestCluster.start({
      args: ["--leader-imbalance-check-interval-ms", "300"],
    });
    await cluster.createTopic(TOPIC, PARTITIONS, 3, { "min.insync.replicas": "2" });
    const controller = await cluster.controllerId();
    const others = [1, 2, 3].filter((id) => id !== controller);
    const victim = others[0]!;
    const witness = others[1]!;

    await t.step("SIGTERM: every leadership has moved by the time the process exits", async () => {
      const before = await partitions(cluster, witness);
      const led = before.filter((p) => p.leader === victim).length;
      assert.ok(led > 0, `node ${victim} leads something`);
      const started = performance.now();
      await cluster.stop(victim);
      const stoppedMs = performance.now() - started;
      const log = await cluster.output(victim);
      assert.match(log, /Controlled shutdown completed/);
      // The controller committed the moves before letting the broker go; the witness has
      // applied them by now or within moments.
      const after = await cluster.waitFor("the witness to show the moves", async () => {
        const view = await partitions(cluster, witness);
        return view.every((p) => p.leader !== victim && !p.isr.includes(victim)) && view;
      }, 2000);
      for (const [i, p] of after.entries()) {
        assert.ok(p.leader >= 0 && before[i]!.isr.includes(p.leader), `p${i} leader from ISR`);
      }
      // deno-lint-ignore no-console -- the figure this test exists to show
      console.error(
        `controlled shutdown of node ${victim} (${led} leaderships): ${
          stoppedMs.toFixed(0)
        } ms to exit`,
      );
      assert.deepEqual(await produceEverywhere(cluster, witness), Array(PARTITIONS).fill(0));
    });

    await t.step(
      "a restarted broker rejoins the ISRs and gets its preferred leaderships back",
      async () => {
        await cluster.restart(victim);
        await cluster.waitFor(`node ${victim} to lead its preferred partitions again`, async () => {
          const view = await partitions(cluster, witness);
          return view.every((p) => p.isr.length === 3 && p.leader === p.replicas[0]);
        }, 20_000);
        assert.deepEqual(await produceEverywhere(cluster, witness), Array(PARTITIONS).fill(0));
      },
    );

    await t.step("SIGTERM to the controller hands the controller role over", async () => {
      const started = performance.now();
      await cluster.stop(controller);
      const log = await cluster.output(controller);
      assert.match(log, /Controller role handed to node/);
      const next = await cluster.waitFor("a new controller", async () => {
        const md = await cluster.metadata(witness, []);
        return md.controllerId >= 0 && md.controllerId !== controller && md.controllerId;
      }, 5000);
      assert.ok(others.includes(next));
      // deno-lint-ignore no-console -- the figure this test exists to show
      console.error(
        `controller ${controller} -> ${next}: ${
          (performance.now() - started).toFixed(0)
        } ms from SIGTERM`,
      );
      assert.deepEqual(await produceEverywhere(cluster, witness), Array(PARTITIONS).fill(0));
    });
  },
});
