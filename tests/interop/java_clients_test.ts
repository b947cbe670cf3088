/**
 * The Java client (kafka-clients 4.1, classic group protocol) against Tidelog, on 1 and 3
 * nodes. Each scenario is a program in `tests/interop/java` that does its own checks and
 * prints a one-line JSON summary (see its Javadoc):
 *
 * - ProducerConsumer: a producer with the defaults (idempotent, acks=all) sends keyed
 *   records with headers, one `send().get()` at a time and pipelined; a consumer reads each
 *   back at the partition and offset its send returned, with its key, value, headers and
 *   timestamp.
 * - Groups: three members share 6 partitions (default assignors, i.e. range; then
 *   cooperative-sticky only), one leaves and the others take its partitions, offsets are
 *   committed, and a new consumer of the group resumes exactly at the committed offsets;
 *   static members (`group.instance.id`): one restarts within the session timeout and gets
 *   its partitions back without a rebalance.
 * - FailoverProducerConsumer (3 nodes): an idempotent acks=all producer and a group
 *   consumer run while this test kill -9s a partition leader; every acknowledged record is
 *   in the log exactly once at its acknowledged offset, and the consumer saw no gap.
 */
import assert from "node:assert/strict";
import { TestCluster } from "../_helpers/cluster.ts";
import { needsJava, runJava, spawnJava } from "../_helpers/java.ts";

const PKG = "dev.tidelog.interop";
/** A shorter wait for a new group's first members (Kafka's default is 3000 ms). */
const BROKER_ARGS = ["--group-initial-rebalance-delay-ms", "500"];

type Summary = Record<string, unknown>;

/** The program's summary, once it exits 0; else its failure with the end of its stderr. */
function summaryOf(name: string, code: number, stdout: string, stderr: string): Summary {
  assert.equal(code, 0, `${name} exited with ${code}:\n${stderr.slice(-6000)}`);
  const summary = JSON.parse(stdout.trim().split("\n").at(-1)!) as Summary;
  assert.equal(summary.ok, true, `${name}: ${stdout}`);
  return summary;
}

/** Runs one of the interop programs to completion. */
async function program(name: string, args: string[]): Promise<Summary> {
  const out = await runJava(`${PKG}.${name}`, args, { allowFailure: true, timeoutMs: 120_000 });
  return summaryOf(`${name} ${args.join(" ")}`, out.code, out.stdout, out.stderr);
}

/** The lines of a text stream. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest !== "") yield rest;
}

/** The scenarios that run the same on 1 and on 3 nodes. */
async function clientScenarios(t: Deno.TestContext, cluster: TestCluster, size: number) {
  const rf = Math.min(3, size);
  const configs: Record<string, string> = size >= 3 ? { "min.insync.replicas": "2" } : {};
  const compressions = size === 1 ? [undefined, "zstd"] : [undefined];
  for (const compression of compressions) {
    const what = compression === undefined ? "" : ` (compression.type=${compression})`;
    await t.step(
      `producer defaults: every record read back where send().get() put it${what}`,
      async () => {
        const topic = `pc-${size}-${compression ?? "none"}`;
        await cluster.createTopic(topic, 4, rf, configs);
        const s = await program("ProducerConsumer", [
          cluster.bootstrap(),
          topic,
          "4",
          ...(compression === undefined ? [] : [compression]),
        ]);
        assert.equal(s.records, 3200);
      },
    );
  }

  for (const mode of ["default", "cooperative-sticky"]) {
    await t.step(
      `group (${mode}): 3 members, one leaves, the rest take over, a restart resumes at the commits`,
      async () => {
        const topic = `groups-${size}-${mode}`;
        await cluster.createTopic(topic, 6, rf, configs);
        const s = await program("Groups", [cluster.bootstrap(), topic, mode]);
        assert.equal(s.assignor, mode === "default" ? "range" : "cooperative-sticky");
        assert.ok((s.readAfterRestart as number) > 0, JSON.stringify(s));
      },
    );
  }

  await t.step(
    "static group members: one restarts and gets its partitions back, no rebalance",
    async () => {
      const topic = `groups-${size}-static`;
      await cluster.createTopic(topic, 6, rf, configs);
      const s = await program("Groups", [cluster.bootstrap(), topic, "static"]);
      assert.equal((s.rejoinedWith as number[]).length, 2, JSON.stringify(s));
    },
  );
}

Deno.test({ name: "java clients: 1 node", ...needsJava() }, async (t) => {
  await using cluster = await TestCluster.start({ size: 1, args: BROKER_ARGS });
  await cluster.waitForBrokers(1);
  await clientScenarios(t, cluster, 1);
});

Deno.test(
  { name: "java clients: 3 nodes, then kill -9 of a leader", ...needsJava() },
  async (t) => {
    await using cluster = await TestCluster.start({ size: 3, args: BROKER_ARGS });
    await cluster.waitForBrokers(3);
    await clientScenarios(t, cluster, 3);

    await t.step(
      "kill -9 of a leader under an idempotent acks=all producer and a group consumer: nothing acknowledged lost or doubled, no gap",
      async () => {
        const topic = "failover";
        await cluster.createTopic(topic, 3, 3, { "min.insync.replicas": "2" });
        const child = await spawnJava(`${PKG}.FailoverProducerConsumer`, [
          cluster.bootstrap(),
          topic,
          "3",
        ]);
        const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
        const stderr = new Response(child.stderr).text();
        const stdin = child.stdin.getWriter();
        const out: string[] = [];
        let killed = -1;
        try {
          for await (const line of lines(child.stdout)) {
            out.push(line);
            if (line === "READY" && killed < 0) {
              const { leader } = await cluster.leaderOf(topic, 0);
              killed = leader;
              await cluster.kill(leader);
              await stdin.write(new TextEncoder().encode(`KILLED node ${leader}\n`));
            }
          }
        } catch (err) {
          try {
            child.kill("SIGKILL");
          } catch { /* exited */ }
          await Promise.all([child.status, stderr]);
          throw err;
        } finally {
          clearTimeout(timer);
          await stdin.close().catch(() => {});
        }
        const { code } = await child.status;
        const what = `FailoverProducerConsumer (killed node ${killed}, the leader of ${topic}-0)`;
        const s = summaryOf(what, code, out.join("\n"), await stderr);
        assert.ok(killed > 0, "the program never printed READY");
        assert.equal(s.liveRead, s.acknowledged, JSON.stringify(s));
      },
    );
  },
);
