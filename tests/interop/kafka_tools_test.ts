/**
 * Kafka's own command-line tools (Kafka 4.1's classes from Maven, run as their shell
 * scripts run them) and the Java AdminClient against Tidelog, on 1 and 3 nodes: each tool
 * prints what it prints against Kafka, with no stack trace (kafka-acls prints one against
 * Kafka too: without an authorizer it fails with SecurityDisabledException).
 */
import assert from "node:assert/strict";
import { TestCluster } from "../_helpers/cluster.ts";
import { kafkaTool, needsJava, runJava } from "../_helpers/java.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { groupPartition } from "../../lib/group/mod.ts";
import { join } from "node:path";

type Tool = Parameters<typeof kafkaTool>[0];

/**
 * Runs a tool; fails on a non-zero exit (unless `timesOut`: the console consumer ends
 * with code 1 when its --timeout-ms passes) or any stack trace in its output.
 */
async function tool(
  name: Tool,
  args: string[],
  stdin?: string,
  timesOut = false,
): Promise<string> {
  const out = await kafkaTool(name, args, { stdin, allowFailure: true });
  let all = out.stdout + out.stderr;
  if (!timesOut) {
    assert.equal(out.code, 0, `${name} ${args.join(" ")} exited with ${out.code}:\n${all}`);
  } else {
    // What the console consumer prints when its --timeout-ms ends it (against Kafka too).
    all = all.replace(
      /\[main\] ERROR \S+ - Error processing message, terminating consumer process: \n?org\.apache\.kafka\.common\.errors\.TimeoutException\n/,
      "",
    );
  }
  assert.doesNotMatch(all, /Exception|\n\s+at [\w.$]+\(/, `${name} printed a stack trace:\n${all}`);
  return out.stdout;
}

/** Parses kafka-consumer-groups' table into rows keyed by column name. */
function table(text: string): Record<string, string>[] {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const header = lines.findIndex((l) => l.startsWith("GROUP"));
  const cols = lines[header]!.trim().split(/\s+/);
  return lines.slice(header + 1).map((l) => {
    const cells = l.trim().split(/\s+/);
    return Object.fromEntries(cols.map((c, i) => [c, cells[i] ?? ""]));
  });
}

async function toolsScenario(t: Deno.TestContext, cluster: TestCluster, size: number) {
  const b = cluster.bootstrap();
  const bs = ["--bootstrap-server", b];
  const rf = String(Math.min(3, size));
  const topic = `tools-${size}`;

  await t.step("kafka-topics --create/--describe/--alter/--list", async () => {
    const created = await tool("kafka-topics", [
      ...bs,
      "--create",
      "--topic",
      topic,
      "--partitions",
      "3",
      "--replication-factor",
      rf,
      "--config",
      "retention.ms=3600000",
    ]);
    assert.match(created, new RegExp(`Created topic ${topic}\\.`));
    await tool("kafka-topics", [...bs, "--alter", "--topic", topic, "--partitions", "4"]);
    const described = await tool("kafka-topics", [...bs, "--describe", "--topic", topic]);
    assert.match(
      described,
      new RegExp(
        // Kafka 4.1 formats a cluster-wide min.insync.replicas=1 (KIP-966), which the
        // tool lists among the non-default configs.
        `Topic: ${topic}\\tTopicId: \\S+\\tPartitionCount: 4\\tReplicationFactor: ${rf}\\tConfigs: min.insync.replicas=1,retention.ms=3600000`,
      ),
    );
    for (let p = 0; p < 4; p++) {
      assert.match(
        described,
        new RegExp(`Partition: ${p}\\tLeader: \\d\\tReplicas: [\\d,]+\\tIsr:`),
      );
    }
    const listed = await tool("kafka-topics", [...bs, "--list"]);
    assert.ok(listed.split("\n").includes(topic), listed);
  });

  await t.step("kafka-configs for topics and brokers", async () => {
    const topicArgs = [...bs, "--entity-type", "topics", "--entity-name", topic];
    assert.match(
      await tool("kafka-configs", [
        ...topicArgs,
        "--alter",
        "--add-config",
        "retention.ms=7200000,segment.ms=600000",
      ]),
      new RegExp(`Completed updating config for topic ${topic}\\.`),
    );
    await tool("kafka-configs", [...topicArgs, "--alter", "--delete-config", "segment.ms"]);
    const topicConfigs = await tool("kafka-configs", [...topicArgs, "--describe"]);
    assert.match(topicConfigs, new RegExp(`Dynamic configs for topic ${topic} are:`));
    assert.match(
      topicConfigs,
      /retention\.ms=7200000 sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:retention\.ms=7200000/,
    );
    assert.doesNotMatch(topicConfigs, /segment\.ms/);

    const brokerArgs = [...bs, "--entity-type", "brokers", "--entity-name", "1"];
    assert.match(
      await tool("kafka-configs", [
        ...brokerArgs,
        "--alter",
        "--add-config",
        "log.retention.ms=86400000",
      ]),
      /Completed updating config for broker 1\./,
    );
    assert.match(
      await tool("kafka-configs", [...brokerArgs, "--describe"]),
      /log\.retention\.ms=86400000 sensitive=false synonyms=\{DYNAMIC_BROKER_CONFIG:log\.retention\.ms=86400000/,
    );
    await tool("kafka-configs", [...brokerArgs, "--alter", "--delete-config", "log.retention.ms"]);
    const defaults = [...bs, "--entity-type", "brokers", "--entity-default"];
    assert.match(
      await tool("kafka-configs", [
        ...defaults,
        "--alter",
        "--add-config",
        "log.retention.bytes=1073741824",
      ]),
      /Completed updating default config for brokers in the cluster\./,
    );
    assert.match(
      await tool("kafka-configs", [...defaults, "--describe"]),
      /log\.retention\.bytes=1073741824 sensitive=false synonyms=\{DYNAMIC_DEFAULT_BROKER_CONFIG:log\.retention\.bytes=1073741824/,
    );
    await tool("kafka-configs", [...defaults, "--alter", "--delete-config", "log.retention.bytes"]);
    const all = await tool("kafka-configs", [...brokerArgs, "--describe", "--all"]);
    assert.match(all, /All configs for broker 1 are:/);
    assert.match(all, /log\.dirs=\S+ sensitive=false/);
    // An unknown key is refused, as Kafka refuses it (a one-line error, exit 1).
    const bad = await kafkaTool("kafka-configs", [
      ...topicArgs,
      "--alter",
      "--add-config",
      "no.such.config=1",
    ], { allowFailure: true });
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stdout + bad.stderr,
      /InvalidConfigurationException|Unknown topic config name/,
    );
  });

  await t.step("console producer and consumer, kafka-consumer-groups", async () => {
    const lines = Array.from({ length: 20 }, (_, i) => `k${i}:v${i}`).join("\n") + "\n";
    await tool("kafka-console-producer", [
      ...bs,
      "--topic",
      topic,
      "--property",
      "parse.key=true",
      "--property",
      "key.separator=:",
    ], lines);
    const group = `tools-g-${size}`;
    const consumed = await tool("kafka-console-consumer", [
      ...bs,
      "--topic",
      topic,
      "--from-beginning",
      "--max-messages",
      "20",
      "--group",
      group,
      "--property",
      "print.key=true",
      "--property",
      "key.separator=:",
    ]);
    assert.deepEqual(
      consumed.split("\n").filter((l) => l !== "").sort(),
      lines.split("\n").filter((l) => l !== "").sort(),
    );
    assert.ok((await tool("kafka-consumer-groups", [...bs, "--list"])).split("\n").includes(group));
    const described = table(
      await tool("kafka-consumer-groups", [...bs, "--describe", "--group", group]),
    );
    assert.equal(described.length, 4);
    assert.equal(described.reduce((n, r) => n + Number(r["CURRENT-OFFSET"]), 0), 20);
    assert.ok(
      described.every((r) => r["LAG"] === "0" && r["CURRENT-OFFSET"] === r["LOG-END-OFFSET"]),
    );
    const reset = table(
      await tool("kafka-consumer-groups", [
        ...bs,
        "--reset-offsets",
        "--to-earliest",
        "--group",
        group,
        "--topic",
        topic,
        "--execute",
      ]),
    );
    assert.equal(reset.length, 4);
    assert.ok(reset.every((r) => r["NEW-OFFSET"] === "0"), JSON.stringify(reset));
    const after = table(
      await tool("kafka-consumer-groups", [...bs, "--describe", "--group", group]),
    );
    assert.equal(after.reduce((n, r) => n + Number(r["LAG"]), 0), 20);
    // __consumer_offsets holds Kafka's own records: Kafka's formatters decode them.
    const formatted = (formatter: string) =>
      tool(
        "kafka-console-consumer",
        [
          ...bs,
          "--topic",
          "__consumer_offsets",
          "--partition",
          String(groupPartition(group, 50)),
          "--offset",
          "earliest",
          "--formatter",
          `org.apache.kafka.tools.consumer.${formatter}`,
          "--consumer-property",
          "exclude.internal.topics=false",
          "--timeout-ms",
          "5000",
        ],
        undefined,
        true,
      );
    const offsets = await formatted("OffsetsMessageFormatter");
    assert.match(
      offsets,
      new RegExp(
        `\\{"key":\\{"type":1,"data":\\{"group":"${group}","topic":"${topic}","partition":\\d\\}\\},` +
          `"value":\\{"version":3,"data":\\{"offset":0,"leaderEpoch":-?\\d+,"metadata":"","commitTimestamp":\\d+\\}\\}\\}`,
      ),
    );
    // Kafka's own log dump reads Tidelog's segment file of that partition, and decodes its
    // records with the offsets decoder.
    if (size === 1) {
      const dir = join(
        cluster.node(1).dataDir,
        "topics",
        `__consumer_offsets-${groupPartition(group, 50)}`,
      );
      const segment = [...Deno.readDirSync(dir)].map((e) => e.name)
        .find((n) => n.endsWith(".log"))!;
      const dumped = await tool("kafka-dump-log", [
        "--files",
        join(dir, segment),
        "--offsets-decoder",
        "--print-data-log",
      ]);
      assert.match(dumped, /Log starting offset: 0/);
      assert.match(dumped, new RegExp(`"group":"${group}","topic":"${topic}"`));
      assert.doesNotMatch(dumped, /corrupt|invalid|failed/i);
    }
    const groups = await formatted("GroupMetadataMessageFormatter");
    assert.match(
      groups,
      new RegExp(
        `\\{"key":\\{"type":2,"data":\\{"group":"${group}"\\}\\},"value":\\{"version":3,"data":\\{"protocolType":"consumer"`,
      ),
    );
    assert.match(
      await tool("kafka-consumer-groups", [...bs, "--delete", "--group", group]),
      new RegExp(`Deletion of requested consumer groups \\('${group}'\\) was successful\\.`),
    );
  });

  await t.step("kafka-log-dirs and kafka-delete-records", async () => {
    const out = await tool("kafka-log-dirs", [...bs, "--describe", "--topic-list", topic]);
    const json = JSON.parse(out.split("\n").find((l) => l.startsWith("{"))!);
    assert.equal(json.brokers.length, size);
    const replicas = json.brokers.flatMap((
      br: { logDirs: { partitions: { partition: string }[] }[] },
    ) => br.logDirs.flatMap((d) => d.partitions.map((p) => p.partition)));
    assert.equal(replicas.length, 4 * Number(rf));
    const file = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.writeTextFile(
      file,
      JSON.stringify({ version: 1, partitions: [{ topic, partition: 0, offset: -1 }] }),
    );
    const deleted = await tool("kafka-delete-records", [...bs, "--offset-json-file", file]);
    await Deno.remove(file);
    assert.match(deleted, new RegExp(`partition: ${topic}-0\\tlow_watermark: \\d+`));
  });

  await t.step("kafka-producer-perf-test and kafka-consumer-perf-test", async () => {
    const perf = `perf-${size}`;
    const produced = await tool("kafka-producer-perf-test", [
      "--topic",
      perf,
      "--num-records",
      "20000",
      "--record-size",
      "100",
      "--throughput",
      "-1",
      "--producer-props",
      `bootstrap.servers=${b}`,
      "acks=all",
    ]);
    assert.match(produced, /^20000 records sent, [\d.]+ records\/sec/m);
    const consumed = await tool("kafka-consumer-perf-test", [
      ...bs,
      "--topic",
      perf,
      "--messages",
      "20000",
    ]);
    const row = consumed.trim().split("\n").at(-1)!.split(", ");
    assert.equal(row[4], "20000", consumed);
  });

  await t.step("kafka-acls --list: SECURITY_DISABLED, as Kafka without an authorizer", async () => {
    const out = await kafkaTool("kafka-acls", [...bs, "--list"], { allowFailure: true });
    assert.equal(out.code, 1);
    // Kafka's AclCommand prints the error and its stack trace itself (Utils.stackTrace).
    assert.match(
      out.stdout,
      /Error while executing ACL command: \S*SecurityDisabledException: No Authorizer is configured\./,
    );
    assert.match(out.stdout, /SecurityDisabledException: No Authorizer is configured\./);
  });

  await t.step("kafka-metadata-quorum describe --status", async () => {
    const out = await tool("kafka-metadata-quorum", [...bs, "describe", "--status"]);
    assert.match(out, /^ClusterId:\s+\S+$/m);
    assert.match(out, /^LeaderId:\s+[1-9]$/m);
    assert.match(out, /^HighWatermark:\s+\d+$/m);
    const voters = out.match(/^CurrentVoters:\s+(.*)$/m)![1]!;
    assert.equal(JSON.parse(voters).length, size);
  });

  await t.step("kafka-topics --delete", async () => {
    await tool("kafka-topics", [...bs, "--delete", "--topic", topic]);
    await cluster.waitFor("the deleted topic to be gone", async () => {
      const md = await cluster.metadata(1, [topic]);
      return md.topics[0]?.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ? true : undefined;
    });
  });

  await t.step("AdminClient: every admin call the tools use", async () => {
    const out = await runJava("dev.tidelog.interop.AdminApis", [b, String(size)], {
      allowFailure: true,
    });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /\{"result":"ok"\}/);
  });
}

Deno.test({ name: "Kafka's tools and AdminClient on 1 node", ...needsJava() }, async (t) => {
  await using cluster = await TestCluster.start({ size: 1 });
  await cluster.waitForBrokers(1);
  await toolsScenario(t, cluster, 1);
});

Deno.test({ name: "Kafka's tools and AdminClient on 3 nodes", ...needsJava() }, async (t) => {
  await using cluster = await TestCluster.start({
    size: 3,
    // Preferred leaders come back only when asked (kafka-leader-election below).
    args: ["--leader-imbalance-check-interval-ms", "0"],
  });
  await cluster.waitForBrokers(3);
  await toolsScenario(t, cluster, 3);

  await t.step("kafka-leader-election --election-type preferred", async () => {
    const bs = ["--bootstrap-server", cluster.bootstrap()];
    await tool("kafka-topics", [
      ...bs,
      "--create",
      "--topic",
      "elect",
      "--replica-assignment",
      "1:2:3",
    ]);
    await cluster.waitFor(
      "node 1 to lead elect-0",
      async () => (await cluster.leaderOf("elect", 0)).leader === 1 || undefined,
    );
    await cluster.stop(1);
    await cluster.waitFor("leadership of elect-0 to move off node 1", async () => {
      const { leader } = await cluster.leaderOf("elect", 0, 2);
      return leader !== 1 && leader > 0 ? true : undefined;
    });
    await cluster.restart(1);
    await cluster.waitFor("node 1 back in the ISR of elect-0", async () => {
      const md = await cluster.metadata(2, ["elect"]);
      return md.topics[0]?.partitions[0]?.isrNodes.length === 3 ? true : undefined;
    });
    const out = await tool("kafka-leader-election", [
      ...bs,
      "--election-type",
      "preferred",
      "--topic",
      "elect",
      "--partition",
      "0",
    ]);
    assert.match(
      out,
      /Successfully completed leader election \(PREFERRED\) for partitions elect-0/,
    );
    assert.equal((await cluster.leaderOf("elect", 0)).leader, 1);
    const again = await tool("kafka-leader-election", [
      ...bs,
      "--election-type",
      "preferred",
      "--topic",
      "elect",
      "--partition",
      "0",
    ]);
    assert.match(again, /Valid replica already elected for partitions elect-0/);
  });

  await t.step("AlterConfigs (legacy, v0 and v2) replaces a topic's overrides", async () => {
    const conn = await cluster.connect(2);
    for (const version of [0, 2]) {
      const res = await conn.request(ApiKey.AlterConfigs, version, {
        resources: [{
          resourceType: 2,
          resourceName: "elect",
          configs: [{ name: "retention.ms", value: String(1000 + version) }],
        }],
        validateOnly: false,
      });
      assert.equal(res.responses[0]!.errorCode, ErrorCode.NONE);
      const replaced = await conn.request(ApiKey.AlterConfigs, version, {
        resources: [
          {
            resourceType: 2,
            resourceName: "elect",
            configs: [{ name: "segment.ms", value: "60000" }],
          },
          { resourceType: 2, resourceName: "missing", configs: [] },
          { resourceType: 4, resourceName: "", configs: [{ name: "node.id", value: "9" }] },
        ],
        validateOnly: false,
      });
      assert.deepEqual(replaced.responses.map((r) => r.errorCode), [
        ErrorCode.NONE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.INVALID_CONFIG,
      ]);
      const described = await conn.request(ApiKey.DescribeConfigs, 4, {
        resources: [{
          resourceType: 2,
          resourceName: "elect",
          configurationKeys: ["retention.ms", "segment.ms"],
        }],
        includeSynonyms: false,
        includeDocumentation: false,
      });
      const values = Object.fromEntries(
        described.results[0]!.configs.map((c) => [c.name, [c.value, c.configSource]]),
      );
      assert.deepEqual(values, {
        "retention.ms": ["604800000", 5], // DEFAULT_CONFIG
        "segment.ms": ["60000", 1], // TOPIC_CONFIG
      });
    }
  });
});
