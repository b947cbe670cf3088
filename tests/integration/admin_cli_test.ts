/**
 * The admin CLI (`tidelog <noun> <verb>`, lib/admin) run as the real program against a
 * node and a 3-node cluster: every verb, exit codes (2 for a bad command line, 1 for a
 * Kafka error, one stderr line each), `--output json` read back, produce from a file then
 * consume, group lag, reset-offsets as a plan and executed, and a group member stopped
 * by SIGINT.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { partitionForKey } from "../../lib/admin/mod.ts";
import { TestCluster } from "../_helpers/cluster.ts";
import { freePort, nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
/** A new group rebalances at once (no 3 s wait for more members). */
const NODE_ARGS = ["--group-initial-rebalance-delay-ms", "0"];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tidelog ...args` to completion. */
async function tidelog(args: string[], options: { stdin?: string } = {}): Promise<Result> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** `tidelog ...args`, which must succeed; its stdout. */
async function ok(args: string[], options: { stdin?: string } = {}): Promise<string> {
  const r = await tidelog(args, options);
  assert.equal(r.code, 0, `tidelog ${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

/** `tidelog ...args --output json`, parsed. */
async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await ok([...args, "--output", "json"])) as T;
}

/** `tidelog ...args`, which must fail with `code` and one stderr line matching `message`. */
async function fails(args: string[], code: 1 | 2, message: RegExp): Promise<void> {
  const r = await tidelog(args);
  assert.equal(r.code, code, `tidelog ${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, message);
}

interface GroupOffsets {
  state: string;
  coordinator: number;
  members: {
    clientId: string;
    host: string;
    assignment: { topic: string; partitions: number[] }[];
  }[];
  offsets: {
    topic: string;
    partition: number;
    committedOffset: number | null;
    logEndOffset: number | null;
    lag: number | null;
  }[];
}

const sum = (xs: (number | null)[]) => xs.reduce<number>((a, x) => a + (x ?? 0), 0);

/** Polls `probe` until it returns something other than undefined (10 s at most). */
async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("tidelog admin CLI: every verb against one node", async (t) => {
  await using dir = await tempDir();
  const node = await NodeProcess.start({ dataDir: nodeDir(dir.path), args: NODE_ARGS });
  const b = ["--bootstrap", node.bootstrap];
  try {
    await t.step("help lists the nouns and verbs; bad command lines exit 2", async () => {
      const help = await ok(["help"]);
      for (const line of ["topic create NAME", "group reset-offsets ID", "consume TOPIC"]) {
        assert.ok(help.includes(`tidelog ${line}`), line);
      }
      assert.match(await ok(["--help"]), /tidelog cluster metadata/);
      await fails(["topic", "frobnicate"], 2, /^tidelog: topic: unknown verb "frobnicate"/);
      await fails(["topic", "create", ...b], 2, /topic create: missing NAME/);
      await fails(["topic", "list", "--bogus", ...b], 2, /unknown flag --bogus/);
      await fails(["group", "reset-offsets", "g", "--topic", "t", ...b], 2, /exactly one of/);
      await fails(["consume", "t", "--count", "x", ...b], 2, /--count: expected an integer/);
    });

    await t.step("topic create, list, describe, alter-config", async () => {
      assert.match(
        await ok([
          "topic",
          "create",
          "t1",
          "--partitions",
          "3",
          "--config",
          "retention.ms=3600000",
          ...b,
        ]),
        /^created topic t1: 3 partitions, replication factor 1, id \S+\n$/,
      );
      await fails(
        ["topic", "create", "t1", ...b],
        1,
        /^tidelog: topic create t1: TOPIC_ALREADY_EXISTS/,
      );
      const list = await json<{ name: string; partitions: number; internal: boolean }[]>([
        "topic",
        "list",
        ...b,
      ]);
      const t1 = list.find((x) => x.name === "t1");
      assert.equal(t1?.partitions, 3);
      assert.equal(t1?.internal, false);
      const d = await json<{ configs: Record<string, string>; partitions: { leader: number }[] }>([
        "topic",
        "describe",
        "t1",
        ...b,
      ]);
      assert.deepEqual(d.configs, { "retention.ms": "3600000" });
      assert.deepEqual(d.partitions.map((p) => p.leader), [1, 1, 1]);
      assert.match(
        await ok(["topic", "describe", "t1", ...b]),
        /PARTITION +LEADER +EPOCH +REPLICAS +ISR/,
      );
      await fails(
        ["topic", "describe", "nope", ...b],
        1,
        /^tidelog: topic describe nope: UNKNOWN_TOPIC_OR_PARTITION/,
      );
      const altered = await json<{ configs: Record<string, string> }>([
        "topic",
        "alter-config",
        "t1",
        "--set",
        "max.message.bytes=2000000",
        "--delete",
        "retention.ms",
        ...b,
      ]);
      assert.deepEqual(altered.configs, { "max.message.bytes": "2000000" });
      await fails(
        ["topic", "alter-config", "t1", "--set", "no.such.config=1", ...b],
        1,
        /INVALID_CONFIG/,
      );
    });

    await t.step("produce from a file, then consume: alone, as JSON, to the end", async () => {
      const file = join(dir.path, "records.txt");
      await Deno.writeTextFile(
        file,
        Array.from({ length: 100 }, (_, i) => `key-${i}:value-${i}\n`).join(""),
      );
      const produced = await json<{ records: number; partitions: { records: number }[] }>([
        "produce",
        "t1",
        "--file",
        file,
        "--key-separator",
        ":",
        ...b,
      ]);
      assert.equal(produced.records, 100);
      assert.equal(sum(produced.partitions.map((p) => p.records)), 100);

      const lines = (await ok([
        "consume",
        "t1",
        "--from-beginning",
        "--count",
        "100",
        "--format",
        "%p %o %k %v",
        ...b,
      ]))
        .trimEnd().split("\n");
      assert.equal(lines.length, 100);
      const next = new Map<number, number>();
      const keys = new Set<string>();
      for (const line of lines) {
        const [p, o, key, value] = line.split(" ");
        const partition = Number(p);
        // Kafka's default partitioner: a key lands where a Java producer would put it.
        assert.equal(partition, partitionForKey(new TextEncoder().encode(key), 3), key);
        assert.equal(value, key!.replace("key", "value"));
        assert.equal(Number(o), next.get(partition) ?? 0, "offsets in order, none skipped");
        next.set(partition, Number(o) + 1);
        keys.add(key!);
      }
      assert.equal(keys.size, 100);

      const records =
        (await ok(["consume", "t1", "--from-beginning", "--count", "3", "--output", "json", ...b]))
          .trimEnd().split("\n").map((l) => JSON.parse(l));
      assert.equal(records.length, 3);
      for (const r of records) {
        assert.deepEqual(Object.keys(r), [
          "topic",
          "partition",
          "offset",
          "timestamp",
          "key",
          "value",
          "headers",
        ]);
        assert.equal(r.value, r.key.replace("key", "value"));
      }
      const all = await ok(["consume", "t1", "--from-beginning", "--exit-at-end", ...b]);
      assert.equal(all.trimEnd().split("\n").length, 100);
    });

    await t.step("a group consumes, then describe shows its lag", async () => {
      const lines = await ok([
        "consume",
        "t1",
        "--group",
        "g1",
        "--from-beginning",
        "--count",
        "40",
        ...b,
      ]);
      assert.equal(lines.trimEnd().split("\n").length, 40);
      const groups = await json<{ group: string; state: string }[]>(["group", "list", ...b]);
      assert.deepEqual(groups.find((g) => g.group === "g1"), {
        group: "g1",
        state: "Empty",
        protocolType: "consumer",
        coordinator: 1,
      });
      const d = await json<GroupOffsets>(["group", "describe", "g1", ...b]);
      assert.equal(d.state, "Empty");
      assert.equal(d.offsets.length, 3);
      assert.equal(sum(d.offsets.map((o) => o.committedOffset)), 40);
      assert.equal(sum(d.offsets.map((o) => o.logEndOffset)), 100);
      assert.equal(sum(d.offsets.map((o) => o.lag)), 60);
      assert.match(
        await ok(["group", "describe", "g1", ...b]),
        /TOPIC +PARTITION +COMMITTED +LOG-END +LAG/,
      );
    });

    await t.step("reset-offsets: a plan changes nothing, --execute commits", async () => {
      const plan = await tidelog([
        "group",
        "reset-offsets",
        "g1",
        "--topic",
        "t1",
        "--to-earliest",
        ...b,
      ]);
      assert.equal(plan.code, 0);
      assert.match(plan.stdout, /GROUP +TOPIC +PARTITION +CURRENT-OFFSET +NEW-OFFSET/);
      assert.match(plan.stderr, /plan only/);
      const planned = await json<{ executed: boolean; partitions: { newOffset: number }[] }>([
        "group",
        "reset-offsets",
        "g1",
        "--topic",
        "t1",
        "--to-earliest",
        ...b,
      ]);
      assert.equal(planned.executed, false);
      assert.deepEqual(planned.partitions.map((p) => p.newOffset), [0, 0, 0]);
      let d = await json<GroupOffsets>(["group", "describe", "g1", ...b]);
      assert.equal(sum(d.offsets.map((o) => o.committedOffset)), 40, "the plan committed nothing");

      await ok([
        "group",
        "reset-offsets",
        "g1",
        "--topic",
        "t1",
        "--to-earliest",
        "--execute",
        ...b,
      ]);
      d = await json<GroupOffsets>(["group", "describe", "g1", ...b]);
      assert.deepEqual(d.offsets.map((o) => o.committedOffset), [0, 0, 0]);
      assert.equal(sum(d.offsets.map((o) => o.lag)), 100);

      // --to-offset stays within each partition's log.
      const ends = d.offsets.map((o) => o.logEndOffset!);
      const toOffset = await json<{ executed: boolean; partitions: { newOffset: number }[] }>([
        "group",
        "reset-offsets",
        "g1",
        "--topic",
        "t1",
        "--to-offset",
        "30",
        "--execute",
        ...b,
      ]);
      assert.equal(toOffset.executed, true);
      assert.deepEqual(
        toOffset.partitions.map((p) => p.newOffset),
        ends.map((e) => Math.min(30, e)),
      );
      const latest = await json<{ partitions: { newOffset: number }[] }>([
        "group",
        "reset-offsets",
        "g1",
        "--topic",
        "t1",
        "--to-latest",
        ...b,
      ]);
      assert.deepEqual(latest.partitions.map((p) => p.newOffset), ends);
      const byTime = await json<{ partitions: { newOffset: number }[] }>([
        "group",
        "reset-offsets",
        "g1",
        "--topic",
        "t1",
        "--to-datetime",
        "2001-01-01T00:00:00Z",
        ...b,
      ]);
      assert.deepEqual(byTime.partitions.map((p) => p.newOffset), [0, 0, 0]);
    });

    await t.step(
      "a running member: reset and delete refused, SIGINT commits and leaves",
      async () => {
        const before = await json<GroupOffsets>(["group", "describe", "g1", ...b]);
        const remaining = sum(before.offsets.map((o) => o.lag));
        const consumer = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            MAIN,
            "consume",
            "t1",
            "--group",
            "g1",
            "--format",
            "%p %o",
            ...b,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const errors = new Response(consumer.stderr).text();
        const reader = consumer.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let printed = "";
        const lines = () => printed.split("\n").length - 1;
        // A stuck consumer fails the test instead of hanging it.
        const watchdog = setTimeout(() => consumer.kill("SIGKILL"), 30_000);
        try {
          try {
            const d = await until("the consumer to join g1", async () => {
              const d = await json<GroupOffsets>(["group", "describe", "g1", ...b]);
              return d.state === "Stable" && d.members.length === 1 ? d : undefined;
            });
            assert.equal(d.members[0]!.clientId, "tidelog-consume");
            assert.deepEqual(d.members[0]!.assignment, [{ topic: "t1", partitions: [0, 1, 2] }]);
            await fails(
              ["group", "reset-offsets", "g1", "--topic", "t1", "--to-earliest", "--execute", ...b],
              1,
              /^tidelog: group reset-offsets g1: NON_EMPTY_GROUP/,
            );
            await fails(
              ["group", "delete", "g1", ...b],
              1,
              /^tidelog: group delete g1: NON_EMPTY_GROUP/,
            );
            while (lines() < remaining) {
              const { value, done } = await reader.read();
              if (done) break;
              printed += value;
            }
          } finally {
            consumer.kill("SIGINT");
          }
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            printed += value;
          }
          const status = await consumer.status;
          assert.equal(status.code, 0, await errors);
          assert.equal(lines(), remaining);
          // What it printed, and only that, is committed on the way out; then it left.
          const after = await json<GroupOffsets>(["group", "describe", "g1", ...b]);
          assert.equal(after.state, "Empty");
          assert.equal(sum(after.offsets.map((o) => o.lag)), 0);
          assert.equal(
            sum(after.offsets.map((o) => o.committedOffset)) -
              sum(before.offsets.map((o) => o.committedOffset)),
            remaining,
          );
        } finally {
          clearTimeout(watchdog);
        }
      },
    );

    await t.step("group delete, topic delete; then both are unknown", async () => {
      assert.equal(await ok(["group", "delete", "g1", ...b]), "deleted group g1\n");
      await fails(["group", "describe", "g1", ...b], 1, /GROUP_ID_NOT_FOUND/);
      assert.equal(await ok(["topic", "delete", "t1", ...b]), "deleted topic t1\n");
      await fails(["topic", "delete", "t1", ...b], 1, /UNKNOWN_TOPIC_OR_PARTITION/);
      await fails(
        ["consume", "t1", "--count", "1", ...b],
        1,
        /^tidelog: consume t1: topic t1: UNKNOWN_TOPIC_OR_PARTITION/,
      );
    });

    await t.step("cluster status and metadata; status is still an alias", async () => {
      const status = await json<{ nodeId: number; up: boolean; role: string }[]>([
        "cluster",
        "status",
        ...b,
      ]);
      assert.deepEqual(status.map((s) => [s.nodeId, s.up, s.role]), [[1, true, "leader"]]);
      const md = await json<{ clusterId: string; controllerId: number; brokers: { id: number }[] }>(
        [
          "cluster",
          "metadata",
          ...b,
        ],
      );
      assert.ok(md.clusterId.length > 0);
      assert.equal(md.controllerId, 1);
      assert.deepEqual(md.brokers.map((x) => x.id), [1]);
      assert.match(await ok(["status", "--addrs", node.bootstrap]), /^node 1 .* up +leader/);
      await fails(
        ["topic", "list", "--bootstrap", `127.0.0.1:${freePort()}`],
        1,
        /^tidelog: topic list: cannot connect to the cluster \(.*connection refused\)\n$/,
      );
    });
  } finally {
    await node.stop();
  }
});

Deno.test("tidelog admin CLI: a 3-node cluster, leaders and coordinator on other nodes", async () => {
  await using cluster = await TestCluster.start({ args: NODE_ARGS });
  await cluster.waitForBrokers(3);
  const via = (id: number) => ["--bootstrap", cluster.bootstrap([id])];

  await ok(["topic", "create", "r3", "--partitions", "3", "--replication-factor", "3", ...via(1)]);
  const d = await json<
    {
      replicationFactor: number;
      partitions: { leader: number; replicas: number[]; isr: number[] }[];
    }
  >([
    "topic",
    "describe",
    "r3",
    ...via(2),
  ]);
  assert.equal(d.replicationFactor, 3);
  for (const p of d.partitions) {
    assert.deepEqual([...p.replicas].sort(), [1, 2, 3]);
    assert.ok(p.replicas.includes(p.leader));
  }

  const input = Array.from({ length: 30 }, (_, i) => `k${i}:v${i}`).join("\n") + "\n";
  const summary = JSON.parse(
    await ok(["produce", "r3", "--key-separator", ":", "--output", "json", ...via(3)], {
      stdin: input,
    }),
  );
  assert.equal(summary.records, 30);

  // One bootstrap node; the partitions' leaders are spread over all three.
  const values = (await ok(["consume", "r3", "--from-beginning", "--count", "30", ...via(1)]))
    .trimEnd().split("\n").sort();
  assert.deepEqual(values, Array.from({ length: 30 }, (_, i) => `v${i}`).sort());

  await ok(["consume", "r3", "--group", "g3", "--from-beginning", "--count", "10", ...via(2)]);
  const g = await json<GroupOffsets>(["group", "describe", "g3", ...via(3)]);
  assert.equal(g.state, "Empty");
  assert.ok([1, 2, 3].includes(g.coordinator));
  assert.equal(sum(g.offsets.map((o) => o.committedOffset)), 10);
  assert.equal(sum(g.offsets.map((o) => o.lag)), 20);
  const groups = await json<{ group: string; coordinator: number }[]>(["group", "list", ...via(1)]);
  assert.deepEqual(groups.filter((x) => x.group === "g3").map((x) => x.coordinator), [
    g.coordinator,
  ]);

  const md = await json<{ controllerId: number; brokers: { id: number }[]; topics: number }>([
    "cluster",
    "metadata",
    ...via(2),
  ]);
  assert.deepEqual(md.brokers.map((x) => x.id), [1, 2, 3]);
  assert.ok([1, 2, 3].includes(md.controllerId));
  // From one bootstrap node, status finds the others.
  const status = await json<{ nodeId: number; up: boolean; role: string }[]>([
    "cluster",
    "status",
    ...via(3),
  ]);
  assert.deepEqual(status.map((s) => [s.nodeId, s.up]), [[1, true], [2, true], [3, true]]);
  assert.equal(status.filter((s) => s.role === "leader").length, 1);

  // A node dies: status (from another node) shows it down, produce (acks=all) waits out the
  // leader and ISR changes, and nothing is lost.
  const victim = d.partitions[0]!.leader === 1 ? 2 : d.partitions[0]!.leader;
  await cluster.kill(victim);
  const down = await json<{ nodeId: number; up: boolean }[]>(["cluster", "status", ...via(1)]);
  assert.deepEqual(down.map((s) => [s.nodeId, s.up]), [1, 2, 3].map((id) => [id, id !== victim]));
  const more = Array.from({ length: 30 }, (_, i) => `k${30 + i}:v${30 + i}`).join("\n") + "\n";
  await ok(["produce", "r3", "--key-separator", ":", ...via(1)], { stdin: more });
  const survivor = victim === 3 ? 2 : 3;
  const all = (await ok(["consume", "r3", "--from-beginning", "--exit-at-end", ...via(survivor)]))
    .trimEnd().split("\n").sort();
  assert.deepEqual(all, Array.from({ length: 60 }, (_, i) => `v${i}`).sort());

  await ok(["topic", "delete", "r3", ...via(1)]);
  await fails(["topic", "describe", "r3", ...via(1)], 1, /UNKNOWN_TOPIC_OR_PARTITION/);
});
