/**
 * Transactions across failures on 3 nodes (issue 13): a confluent-kafka producer holds a
 * transaction over 6 partitions (RF 3, min.insync.replicas 2) while the test kill -9s a
 * partition leader, the transaction coordinator, or the coordinator right as the commit
 * goes out; the transaction then commits everywhere (every record visible exactly once to
 * read_committed readers) or, when the client saw it fail, nowhere — never in part. Markers
 * and verification cross nodes here (coordinator and partition leaders differ).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ApiKey } from "../../lib/protocol/mod.ts";
import { HAVE_CONFLUENT, needs, PYTHON, run } from "../_helpers/clients.ts";
import { TestCluster } from "../_helpers/cluster.ts";

const SCRIPT = fileURLToPath(new URL("./clients/confluent_txn.py", import.meta.url));
const TOPIC = "txn-failover";
const PARTITIONS = 6;

/** The node coordinating `transactionalId`. */
async function coordinatorOf(cluster: TestCluster, via: number, transactionalId: string) {
  const conn = await cluster.connect(via);
  const r = await conn.request(ApiKey.FindCoordinator, 4, {
    keyType: 1,
    coordinatorKeys: [transactionalId],
  });
  return r.coordinators[0]!;
}

/** read_committed values of the topic, once `expected` many are visible (or 60 s passed). */
async function committedValues(bootstrap: string, expected: number): Promise<string[]> {
  const deadline = Date.now() + 60_000;
  let values: string[] = [];
  while (Date.now() < deadline) {
    const out = await run(
      PYTHON,
      [SCRIPT, bootstrap, "read", TOPIC, "read_committed", String(PARTITIONS)],
      { timeoutMs: 60_000, allowFailure: true },
    );
    if (out.code === 0) {
      values = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
      if (values.length >= expected) break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return values;
}

/**
 * Runs a held transaction tagged `tag`: once its records are produced, `breakIt` runs;
 * then the commit, during which `whileCommitting` runs. Returns the client's outcome.
 */
async function heldTransaction(
  bootstrap: string,
  tag: string,
  breakIt: () => Promise<void>,
  whileCommitting: () => Promise<void> = () => Promise.resolve(),
): Promise<{ error: string | null }> {
  const child = new Deno.Command(PYTHON, {
    args: [SCRIPT, bootstrap, "held", TOPIC, String(PARTITIONS), tag],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("produced\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`held transaction ended early: ${out}\n${await stderr}`);
    out += value;
  }
  await breakIt();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("commit\n"));
  await writer.close();
  await whileCommitting();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const status = await child.status;
  assert.equal(status.code, 0, `${out}\n${await stderr}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

Deno.test({
  name: "transactions: a partition leader or the coordinator killed mid-transaction",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn(t) {
    await using cluster = await TestCluster.start({ size: 3 });
    await cluster.waitForBrokers(3);
    await cluster.createTopic(TOPIC, PARTITIONS, 3, { "min.insync.replicas": "2" });
    const expected: string[] = [];
    const check = async (tag: string, outcome: { error: string | null }) => {
      const mine = Array.from({ length: 20 * PARTITIONS }, (_, i) => `${tag}-${i}`);
      if (outcome.error === null) expected.push(...mine);
      const values = await committedValues(cluster.bootstrap(), expected.length);
      assert.deepEqual(values, [...expected].sort(), `after ${tag} (${outcome.error})`);
    };

    await t.step(
      "the leader of a partition in the transaction is killed before the commit",
      async () => {
        const coordinator = await coordinatorOf(cluster, 1, "txn-held-leader");
        let victim = -1;
        for (let p = 0; p < PARTITIONS && victim < 0; p++) {
          const { leader } = await cluster.leaderOf(TOPIC, p);
          if (leader !== coordinator.nodeId) victim = leader;
        }
        assert.ok(victim > 0);
        const outcome = await heldTransaction(
          cluster.bootstrap(),
          "leader",
          () => cluster.kill(victim),
        );
        await check("leader", outcome);
        assert.equal(outcome.error, null, "the commit goes through on the new leaders");
        await cluster.restart(victim);
        await cluster.waitForBrokers(3);
      },
    );

    await t.step("the transaction coordinator is killed before the commit", async () => {
      let victim = -1;
      const outcome = await heldTransaction(cluster.bootstrap(), "coord", async () => {
        victim = (await coordinatorOf(cluster, 1, "txn-held-coord")).nodeId;
        await cluster.kill(victim);
      });
      // The new coordinator loads the transaction as Ongoing: the commit completes there.
      await check("coord", outcome);
      assert.equal(outcome.error, null, "the client's commit goes to the new coordinator");
      await cluster.restart(victim);
      await cluster.waitForBrokers(3);
    });

    await t.step("the coordinator is killed while the commit's markers go out", async () => {
      let victim = -1;
      const outcome = await heldTransaction(
        cluster.bootstrap(),
        "markers",
        async () => {
          victim = (await coordinatorOf(cluster, 1, "txn-held-markers")).nodeId;
        },
        async () => {
          await new Promise((r) => setTimeout(r, 30));
          await cluster.kill(victim);
        },
      );
      await check("markers", outcome);
      await cluster.restart(victim);
      await cluster.waitForBrokers(3);
    });
  },
});
