/**
 * Transactions (issue 13) in the Java world, on 3 nodes: kafka-clients, Kafka's
 * `kafka-transactions` tool and Kafka Streams. Each Java program does its own checks and
 * prints a one-line JSON summary (see its Javadoc in `tests/interop/java`):
 *
 * - Transactions: commits and aborts over 3 partitions with plain records between them
 *   (read_committed reads exactly the committed ones, read_uncommitted all, one marker per
 *   partition and transaction), an open transaction holding the last stable offset,
 *   KIP-447 consume-transform-produce with `sendOffsetsToTransaction(offsets,
 *   groupMetadata())` and one aborted round, and zombie fencing (a second producer with
 *   the same transactional.id: the first gets ProducerFencedException).
 * - `kafka-transactions` list / describe / describe-producers / find-hanging while a
 *   transaction (HeldTransaction) is open and after it commits, including
 *   describe-producers on a follower and find-hanging per broker (Kafka answers
 *   DescribeProducers on any replica).
 * - StreamsWordCount: a Kafka Streams word count with exactly_once_v2 while this test
 *   kill -9s the broker coordinating (some of) the app's transactions and later restarts
 *   it; and while this test kill -9s the app itself, whose next instance restores its
 *   stores from the changelogs and goes on. Each word's committed counts must be exactly
 *   1..n (no record counted twice or lost).
 */
import assert from "node:assert/strict";
import { TestCluster } from "../_helpers/cluster.ts";
import { kafkaTool, needsJava, runJava, spawnJava } from "../_helpers/java.ts";
import { ApiKey, ErrorCode, errorName } from "../../lib/protocol/mod.ts";

const PKG = "dev.tidelog.interop";
/** A shorter wait for a new group's first members (Kafka's default is 3000 ms). */
const BROKER_ARGS = ["--group-initial-rebalance-delay-ms", "500"];
/** Topic configs of a 3-node test topic: acks=all writes survive one node down. */
const RF3 = { "min.insync.replicas": "2" };

type Summary = Record<string, unknown>;

/** The program's summary, once it exits 0; else its failure with the end of its stderr. */
function summaryOf(name: string, code: number, stdout: string, stderr: string): Summary {
  assert.equal(code, 0, `${name} exited with ${code}:\n${stderr.slice(-8000)}`);
  const summary = JSON.parse(stdout.trim().split("\n").at(-1)!) as Summary;
  assert.equal(summary.ok, true, `${name}: ${stdout}`);
  return summary;
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

/**
 * Runs an interop program that talks with the test: `onLine` gets each line it prints and
 * may answer on its stdin (`say`) or end its stdin (`end`). Returns its summary; the
 * program is killed after `timeoutMs`, or when `onLine` throws.
 */
async function converse(
  name: string,
  args: string[],
  onLine: (
    line: string,
    say: (text: string) => Promise<void>,
    end: () => Promise<void>,
  ) => Promise<void>,
  timeoutMs: number,
): Promise<Summary> {
  const child = await spawnJava(`${PKG}.${name}`, args);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const stderr = new Response(child.stderr).text();
  const stdin = child.stdin.getWriter();
  let ended = false;
  const end = async () => {
    if (!ended) {
      ended = true;
      await stdin.close().catch(() => {});
    }
  };
  const say = (text: string) => stdin.write(new TextEncoder().encode(`${text}\n`));
  const out: string[] = [];
  try {
    for await (const line of lines(child.stdout)) {
      out.push(line);
      await onLine(line, say, end);
    }
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await Promise.all([child.status, stderr]);
    throw new Error(`${(err as Error).message}\n${name} stderr:\n${(await stderr).slice(-8000)}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    await end();
  }
  const { code } = await child.status;
  return summaryOf(`${name} ${args.join(" ")}`, code, out.join("\n"), await stderr);
}

/**
 * Runs `kafka-transactions` with `args`; fails on a non-zero exit or a stack trace, and
 * returns its table as rows keyed by column (the tool pads cells and ends each with a tab).
 */
async function transactionsTool(
  bootstrap: string,
  args: string[],
): Promise<Record<string, string>[]> {
  const out = await kafkaTool("kafka-transactions", ["--bootstrap-server", bootstrap, ...args], {
    allowFailure: true,
  });
  const all = out.stdout + out.stderr;
  assert.equal(
    out.code,
    0,
    `kafka-transactions ${args.join(" ")} exited with ${out.code}:\n${all}`,
  );
  assert.doesNotMatch(all, /Exception|\n\s+at [\w.$]+\(/, `a stack trace:\n${all}`);
  const rows = out.stdout.split("\n").filter((l) => l.trim() !== "")
    .map((l) => l.split("\t").slice(0, -1).map((c) => c.trim()));
  const header = rows[0];
  assert.ok(header !== undefined, `kafka-transactions ${args.join(" ")}: no table:\n${all}`);
  return rows.slice(1).map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]!])));
}

/**
 * The high watermark and the last stable offset of a partition, from ListOffsets (latest,
 * read_uncommitted and read_committed) to `node`; throws on an error code.
 */
async function stableOffsets(
  cluster: TestCluster,
  node: number,
  topic: string,
  partition: number,
): Promise<{ hw: number; lso: number }> {
  const conn = await cluster.connect(node);
  try {
    const latest = async (isolationLevel: number) => {
      const res = await conn.request(ApiKey.ListOffsets, 7, {
        replicaId: -1,
        isolationLevel,
        timeoutMs: 0,
        topics: [{
          name: topic,
          partitions: [{
            partitionIndex: partition,
            currentLeaderEpoch: -1,
            timestamp: -1n,
            maxNumOffsets: 1,
          }],
        }],
      });
      const p = res.topics[0]?.partitions[0];
      if (p === undefined || p.errorCode !== ErrorCode.NONE) {
        throw new Error(
          `ListOffsets ${topic}-${partition} on node ${node}: ${
            p ? errorName(p.errorCode) : "no answer"
          }`,
        );
      }
      return Number(p.offset);
    };
    return { hw: await latest(0), lso: await latest(1) };
  } finally {
    await conn.close();
  }
}

Deno.test(
  {
    name: "java transactions on 3 nodes: kafka-clients and kafka-transactions",
    ...needsJava(),
  },
  async (t) => {
    await using cluster = await TestCluster.start({ size: 3, args: BROKER_ARGS });
    await cluster.waitForBrokers(3);

    await t.step(
      "kafka-clients: read_committed sees exactly the committed records; sendOffsetsToTransaction; fencing",
      async () => {
        const prefix = "jtxn";
        for (const suffix of ["data", "lso", "in", "out", "fence"]) {
          await cluster.createTopic(`${prefix}-${suffix}`, 3, 3, RF3);
        }
        const out = await runJava(`${PKG}.Transactions`, [cluster.bootstrap(), prefix], {
          allowFailure: true,
          timeoutMs: 150_000,
        });
        const s = summaryOf("Transactions", out.code, out.stdout, out.stderr);
        // 7 committed transactions of 30 records, plus 10 plain records; 3 aborted of 30.
        assert.equal(s.committedRead, 7 * 30 + 10, JSON.stringify(s));
        assert.equal(s.uncommittedRead, 10 * 30 + 10, JSON.stringify(s));
        assert.equal(s.copied, 600, JSON.stringify(s));
        assert.deepEqual(s.groupOffsets, [200, 200, 200], JSON.stringify(s));
        assert.equal(s.zombieCommitError, "ProducerFencedException", JSON.stringify(s));
      },
    );

    await t.step(
      "kafka-transactions list/describe/describe-producers/find-hanging: open, then committed",
      async () => {
        const topic = "held";
        const txid = "held-txn";
        await cluster.createTopic(topic, 3, 3, RF3);
        const b = cluster.bootstrap();
        let pid = "";
        let epoch = "";
        await converse(
          "HeldTransaction",
          [b, txid, topic, "1", "7"],
          async (line, say, end) => {
            if (line === "OPEN") {
              const listed = await transactionsTool(b, ["list"]);
              const mine = listed.find((r) => r.TransactionalId === txid);
              assert.ok(mine, `list: ${JSON.stringify(listed)}`);
              assert.equal(mine.TransactionState, "Ongoing");
              assert.match(mine.Coordinator!, /^[123]$/);
              pid = mine.ProducerId!;

              const [described] = await transactionsTool(b, [
                "describe",
                "--transactional-id",
                txid,
              ]);
              assert.ok(described);
              assert.equal(described.CoordinatorId, mine.Coordinator);
              assert.equal(described.ProducerId, pid);
              assert.equal(described.TransactionState, "Ongoing");
              assert.equal(described.TransactionTimeoutMs, "60000");
              assert.match(described.CurrentTransactionStartTimeMs!, /^\d{13}$/);
              assert.match(described.TransactionDurationMs!, /^\d+$/);
              assert.equal(described.TopicPartitions, `${topic}-1`);
              epoch = described.ProducerEpoch!;

              const producers = await transactionsTool(b, [
                "describe-producers",
                "--topic",
                topic,
                "--partition",
                "1",
              ]);
              assert.equal(producers.length, 1, JSON.stringify(producers));
              assert.equal(producers[0]!.ProducerId, pid);
              assert.equal(producers[0]!.ProducerEpoch, epoch);
              assert.equal(producers[0]!.LastSequence, "6");
              assert.equal(producers[0]!.CurrentTransactionStartOffset, "0");

              // Open for more than 0 minutes, but its coordinator knows it: not hanging.
              const hanging = await transactionsTool(b, [
                "find-hanging",
                "--topic",
                topic,
                "--max-transaction-timeout",
                "0",
              ]);
              assert.deepEqual(hanging, []);
              await say("COMMIT");
            } else if (line === "COMMITTED") {
              // EndTxn is answered before the markers: wait for CompleteCommit.
              const described = await cluster.waitFor("CompleteCommit", async () => {
                const [row] = await transactionsTool(b, [
                  "describe",
                  "--transactional-id",
                  txid,
                ]);
                return row?.TransactionState === "CompleteCommit" ? row : undefined;
              });
              assert.equal(described.ProducerId, pid);
              assert.equal(described.TopicPartitions, "");
              const [producer] = await transactionsTool(b, [
                "describe-producers",
                "--topic",
                topic,
                "--partition",
                "1",
              ]);
              assert.ok(producer);
              assert.equal(producer.ProducerId, pid);
              assert.equal(producer.CurrentTransactionStartOffset, "None");
              assert.match(producer.LatestCoordinatorEpoch!, /^\d+$/);
              const listed = await transactionsTool(b, ["list"]);
              assert.equal(
                listed.find((r) => r.TransactionalId === txid)?.TransactionState,
                "CompleteCommit",
              );
              await end();
            }
          },
          150_000,
        );
        assert.notEqual(pid, "", "HeldTransaction never printed OPEN");

        const unknown = await kafkaTool("kafka-transactions", [
          "--bootstrap-server",
          b,
          "describe",
          "--transactional-id",
          "no-such-txn",
        ], { allowFailure: true });
        assert.equal(unknown.code, 1);
        assert.match(
          unknown.stderr,
          /Failed to describe transaction state of transactional-id `no-such-txn`: /,
        );
      },
    );

    await t.step(
      "kafka-transactions describe-producers --broker-id (a follower) and find-hanging --broker-id",
      async () => {
        // Kafka answers DescribeProducers on every replica of a partition (Partition.scala
        // activeProducerState reads the local log, leader or follower), and find-hanging
        // --broker-id asks one broker about every partition it holds.
        const b = cluster.bootstrap();
        const { leader, replicas } = await cluster.leaderOf("held", 1);
        const follower = replicas.find((r) => r !== leader)!;
        const [producer] = await transactionsTool(b, [
          "describe-producers",
          "--broker-id",
          String(follower),
          "--topic",
          "held",
          "--partition",
          "1",
        ]);
        assert.ok(producer);
        assert.equal(producer.LastSequence, "6");
        assert.equal(producer.CurrentTransactionStartOffset, "None");
        for (const id of [1, 2, 3]) {
          assert.deepEqual(
            await transactionsTool(b, ["find-hanging", "--broker-id", String(id)]),
            [],
          );
        }
      },
    );

    await t.step(
      "kill -9 of the leader under an open transaction: the new leader's LSO stays at its start until the abort",
      async () => {
        const topic = "held-failover";
        await cluster.createTopic(topic, 1, 3, RF3);
        const { leader } = await cluster.leaderOf(topic, 0);
        let newLeader = -1;
        const s = await converse(
          "HeldTransaction",
          [cluster.bootstrap(), "held-failover-txn", topic, "0", "7"],
          async (line, say, end) => {
            if (line === "OPEN") {
              // The 7 records are acknowledged (acks=all): both followers have them, and
              // their producer state must have the transaction open from offset 0.
              await cluster.kill(leader);
              newLeader = await cluster.waitFor("a new leader of held-failover-0", async () => {
                const now = (await cluster.leaderOf(topic, 0)).leader;
                return now > 0 && now !== leader ? now : undefined;
              });
              const offsets = await cluster.waitFor(
                "the new leader's high watermark at 7",
                async () => {
                  const o = await stableOffsets(cluster, newLeader, topic, 0);
                  return o.hw === 7 ? o : undefined;
                },
              );
              assert.deepEqual(offsets, { hw: 7, lso: 0 });
              const [producer] = await transactionsTool(cluster.bootstrap(), [
                "describe-producers",
                "--topic",
                topic,
                "--partition",
                "0",
              ]);
              assert.equal(producer?.CurrentTransactionStartOffset, "0");
              await say("ABORT");
            } else if (line === "ABORTED") {
              const after = await cluster.waitFor("the abort marker", async () => {
                const o = await stableOffsets(cluster, newLeader, topic, 0);
                return o.lso === o.hw ? o : undefined;
              });
              assert.deepEqual(after, { hw: 8, lso: 8 });
              await end();
            }
          },
          150_000,
        );
        assert.ok(newLeader > 0, "HeldTransaction never printed OPEN");
        assert.equal(s.outcome, "ABORTED");
        assert.equal(s.committedRead, 0, JSON.stringify(s));
        assert.equal(s.uncommittedRead, 7, JSON.stringify(s));
        await cluster.restart(leader);
      },
    );
  },
);

/** Lines of the Streams app's input and the sleep per line (so the kill lands mid-run). */
const WORDCOUNT_LINES = 3000;
const WORDCOUNT_PACE_MS = 4;

Deno.test(
  {
    name:
      "Kafka Streams: exactly_once_v2 word count through kill -9 and restart of its transaction coordinator: exact counts",
    ...needsJava(),
  },
  async () => {
    await using cluster = await TestCluster.start({ size: 3, args: BROKER_ARGS });
    await cluster.waitForBrokers(3);
    await cluster.createTopic("wc-in", 3, 3, RF3);
    await cluster.createTopic("wc-out", 3, 3, RF3);
    const stateDir = await Deno.makeTempDir({ prefix: "tidelog-streams-" });
    let victim = -1;
    let led: string[] = [];
    try {
      const s = await converse(
        "StreamsWordCount",
        [
          cluster.bootstrap(),
          "wc-in",
          "wc-out",
          "wc-app",
          stateDir,
          String(WORDCOUNT_LINES),
          String(WORDCOUNT_PACE_MS),
          "broker-kill",
        ],
        async (line, say) => {
          const ready = /^READY txn-coordinators=([\d,]*) group-coordinator=(\d+)$/.exec(line);
          if (ready) {
            // The broker coordinating (one of) the app's transactional ids: its death moves
            // the transaction state, and the partitions it leads, to the other nodes.
            const coordinators = ready[1]!.split(",").filter((x) => x !== "").map(Number);
            victim = coordinators[0] ?? Number(ready[2]);
            led = await partitionsLedBy(cluster, victim);
            await cluster.kill(victim);
            await say(`KILLED node ${victim} (leader of ${led.join(" ")})`);
          } else if (line === "RESUMED") {
            await cluster.restart(victim);
            await say("RESTARTED");
          }
        },
        170_000,
      );
      assert.ok(victim > 0, "the app never printed READY");
      assert.ok(led.length > 0, `node ${victim} led no partition of the app's topics`);
      assert.equal(s.committedOutput, s.words, JSON.stringify(s));
    } finally {
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  {
    name:
      "Kafka Streams: exactly_once_v2 word count through kill -9 of the app mid-transaction and a restart on its state: exact counts",
    ...needsJava(),
  },
  async () => {
    await using cluster = await TestCluster.start({ size: 3, args: BROKER_ARGS });
    await cluster.waitForBrokers(3);
    await cluster.createTopic("wc-in", 3, 3, RF3);
    await cluster.createTopic("wc-out", 3, 3, RF3);
    const stateDir = await Deno.makeTempDir({ prefix: "tidelog-streams-" });
    const args = (mode: string) => [
      cluster.bootstrap(),
      "wc-in",
      "wc-out",
      "wc-app",
      stateDir,
      String(WORDCOUNT_LINES),
      String(WORDCOUNT_PACE_MS),
      mode,
    ];
    try {
      // The first instance commits a third of the counts and dies with a transaction open
      // (commit.interval.ms is 100 and it is always processing).
      const crashed = await spawnJava(`${PKG}.StreamsWordCount`, args("crash"));
      const timer = setTimeout(() => crashed.kill("SIGKILL"), 120_000);
      const stderr = new Response(crashed.stderr).text();
      let ready = false;
      try {
        for await (const line of lines(crashed.stdout)) {
          if (line === "READY") {
            ready = true;
            crashed.kill("SIGKILL");
          }
        }
      } finally {
        clearTimeout(timer);
        await crashed.stdin.close().catch(() => {});
      }
      const status = await crashed.status;
      assert.ok(ready, `the first instance never printed READY:\n${(await stderr).slice(-8000)}`);
      assert.equal(status.signal, "SIGKILL");

      const out = await runJava(`${PKG}.StreamsWordCount`, args("resume"), {
        allowFailure: true,
        timeoutMs: 150_000,
      });
      const s = summaryOf("StreamsWordCount resume", out.code, out.stdout, out.stderr);
      assert.equal(s.committedOutput, s.words, JSON.stringify(s));
      // Its stores came back from the changelogs (EOS keeps no checkpoint while running).
      assert.ok((s.restoredRecords as number) > 0, JSON.stringify(s));
    } finally {
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    }
  },
);

/** The partitions of the word count's topics (input, output, internal) that `id` leads. */
async function partitionsLedBy(cluster: TestCluster, id: number): Promise<string[]> {
  const md = await cluster.metadata(id, null);
  return md.topics
    .filter((t) => t.name !== null && /^wc-/.test(t.name))
    .flatMap((t) =>
      t.partitions.filter((p) => p.leaderId === id).map((p) => `${t.name}-${p.partitionIndex}`)
    );
}
