/**
 * Apache Kafka 4.1 beside Tidelog: a real KRaft cluster in combined mode
 * (`process.roles=broker,controller`) from the Maven artifacts in `tests/interop/java`
 * (DESIGN.md §11, §13), on 127.0.0.1 with free ports and temporary log dirs, for
 * differential tests and benchmarks.
 *
 * Each node is formatted with `kafka.tools.StorageTool format` (a fresh cluster id; the
 * quorum is the static `controller.quorum.voters` list, which Kafka 4.1 still supports for
 * 1 and 3 voters and which needs no directory ids) and run as `java -cp … kafka.Kafka
 * server.properties`. Kafka's defaults apply except for what keeps tests fast on a 2-core
 * box: internal topics' replication factor min(size, 3) (and min ISR min(size, 2)), no
 * initial rebalance delay, a 512 MiB heap and the serial collector. Logs (WARN and up) go
 * to `<dir>/node-N/server.log`, not to the console.
 *
 * ```ts
 * await using kafka = await KafkaReference.start({ size: 1 });
 * const conn = await KafkaConnection.connect("127.0.0.1", kafka.nodes[0]!.port);
 * ```
 *
 * From a shell (the benchmark does the same): `deno run --allow-all
 * tests/_helpers/kafka_reference.ts --size 3 [--config key=value]...` prints the bootstrap
 * on stdout and keeps the cluster up until SIGINT/SIGTERM.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey } from "../../lib/protocol/mod.ts";
import { javaClasspath } from "./java.ts";
import { freePort } from "./node_process.ts";
import { run } from "./run.ts";

/** Options of {@linkcode KafkaReference.start}. */
export interface KafkaReferenceOptions {
  /** Number of combined broker+controller nodes (ids 1..size). @default 1 */
  size?: 1 | 3;
  /** Extra `server.properties` entries; they win over the harness's defaults. */
  config?: Record<string, string>;
  /**
   * JVM flags before the class name; they replace the default heap, GC and JIT flags
   * (tuned for a quick start with little CPU; pass your own to measure throughput, as the
   * command line does by default).
   * @default ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
   */
  jvmArgs?: string[];
  /** How long start-up may take before it fails. @default 120000 */
  timeoutMs?: number;
  /**
   * Feature levels the cluster is formatted with (`kafka-storage format --feature K=V`), e.g.
   * `{ "transaction.version": 1 }` for KIP-98 transactions without KIP-890; default: those of
   * Kafka's latest metadata version.
   */
  features?: Record<string, number>;
}

/** One node of a {@linkcode KafkaReference}. */
export interface KafkaNode {
  readonly id: number;
  /** The PLAINTEXT (client) listener's port on 127.0.0.1. */
  readonly port: number;
  /** The CONTROLLER listener's port on 127.0.0.1. */
  readonly controllerPort: number;
  /** The node's directory: `server.properties`, `server.log`, `data/`. */
  readonly dir: string;
}

interface Running {
  child: Deno.ChildProcess;
  exited: Promise<Deno.CommandStatus>;
  stderr: Promise<string>;
}

/** Test defaults: a small heap, one GC thread, C1 only (starts faster, uses less CPU). */
const DEFAULT_JVM_ARGS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];
/** Command-line defaults (benchmarks): Kafka's own 1 GiB heap, full JIT, ParallelGC. */
const CLI_JVM_ARGS = ["-Xms1g", "-Xmx1g", "-XX:+UseParallelGC"];

/** A fresh cluster id as Kafka prints it: 16 random bytes, URL-safe base64, no padding. */
function randomClusterId(): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const id = btoa(String.fromCharCode(...bytes))
      .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    // Kafka's Uuid.randomUuid() never starts an id with "-" (it reads as a CLI flag).
    if (!id.startsWith("-")) return id;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function tail(path: string, chars = 3000): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.slice(-chars);
}

/** A running Apache Kafka cluster; `[Symbol.asyncDispose]` kills it and removes its files. */
export class KafkaReference implements AsyncDisposable {
  readonly nodes: readonly KafkaNode[];
  readonly clusterId: string;
  /** The parent of the nodes' directories (removed on dispose). */
  readonly dir: string;
  /** How long start-up took: formatting the nodes, then until every node was ready. */
  readonly startupMs = { format: 0, ready: 0 };
  readonly #classpath: string;
  readonly #jvmArgs: string[];
  readonly #running = new Map<number, Running>();
  #closed = false;

  private constructor(
    dir: string,
    nodes: KafkaNode[],
    clusterId: string,
    classpath: string,
    jvmArgs: string[],
  ) {
    this.dir = dir;
    this.nodes = nodes;
    this.clusterId = clusterId;
    this.#classpath = classpath;
    this.#jvmArgs = jvmArgs;
  }

  /**
   * Formats and starts the cluster; resolves once every node answers Metadata listing all
   * `size` brokers and a controller. On failure everything started is killed and removed,
   * and the error carries the tail of each node's log.
   */
  static async start(options: KafkaReferenceOptions = {}): Promise<KafkaReference> {
    const size = options.size ?? 1;
    if (size !== 1 && size !== 3) {
      throw new RangeError(`Cannot start a Kafka reference of ${size} nodes: use 1 or 3`);
    }
    const classpath = await javaClasspath();
    const dir = await Deno.makeTempDir({ prefix: "kafka-reference-" });
    const ports = new Set<number>();
    while (ports.size < 2 * size) ports.add(freePort());
    const [...p] = ports;
    const nodes: KafkaNode[] = Array.from({ length: size }, (_, i) => ({
      id: i + 1,
      port: p[2 * i]!,
      controllerPort: p[2 * i + 1]!,
      dir: join(dir, `node-${i + 1}`),
    }));
    const cluster = new KafkaReference(
      dir,
      nodes,
      randomClusterId(),
      classpath,
      options.jvmArgs ?? DEFAULT_JVM_ARGS,
    );
    try {
      const voters = nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(",");
      const internalRf = String(Math.min(size, 3));
      const internalMinIsr = String(Math.min(size, 2));
      const began = performance.now();
      await Promise.all(nodes.map(async (n) => {
        await Deno.mkdir(join(n.dir, "data"), { recursive: true });
        const props: Record<string, string> = {
          "process.roles": "broker,controller",
          "node.id": String(n.id),
          "controller.quorum.voters": voters,
          "listeners": `PLAINTEXT://127.0.0.1:${n.port},CONTROLLER://127.0.0.1:${n.controllerPort}`,
          "advertised.listeners": `PLAINTEXT://127.0.0.1:${n.port}`,
          "controller.listener.names": "CONTROLLER",
          "inter.broker.listener.name": "PLAINTEXT",
          "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
          "log.dirs": join(n.dir, "data"),
          "offsets.topic.replication.factor": internalRf,
          "transaction.state.log.replication.factor": internalRf,
          "transaction.state.log.min.isr": internalMinIsr,
          "share.coordinator.state.topic.replication.factor": internalRf,
          "share.coordinator.state.topic.min.isr": internalMinIsr,
          "group.initial.rebalance.delay.ms": "0",
          ...options.config,
        };
        await Deno.writeTextFile(
          join(n.dir, "server.properties"),
          Object.entries(props).map(([k, v]) => `${k}=${v}\n`).join(""),
        );
        await Deno.writeTextFile(join(n.dir, "log4j2.properties"), log4j2Config(n.dir));
        await cluster.#java("kafka.tools.StorageTool", [
          "format",
          "--cluster-id",
          cluster.clusterId,
          "--config",
          join(n.dir, "server.properties"),
          "--ignore-formatted",
          ...Object.entries(options.features ?? {}).flatMap(([k, v]) => ["--feature", `${k}=${v}`]),
        ], n);
      }));
      const formatted = performance.now();
      cluster.startupMs.format = Math.round(formatted - began);
      for (const n of nodes) cluster.#launch(n);
      await cluster.#waitReady(options.timeoutMs ?? 120_000);
      cluster.startupMs.ready = Math.round(performance.now() - formatted);
    } catch (err) {
      const logs = await Promise.all(
        nodes.map(async (n) =>
          `--- node ${n.id} server.log ---\n${await tail(join(n.dir, "server.log"))}`
        ),
      );
      const stderrs = await cluster.#killAll().catch(() => []);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(
        `Cannot start Apache Kafka (${size} nodes): ${(err as Error).message}\n${
          logs.join("\n")
        }\n` +
          stderrs.map((s, i) => `--- stderr ${i + 1} ---\n${s.slice(-2000)}`).join("\n"),
      );
    }
    return cluster;
  }

  /** `127.0.0.1:port,...` of every node (the PLAINTEXT listeners). */
  get bootstrap(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(",");
  }

  /** The node with this id. */
  node(id: number): KafkaNode {
    const node = this.nodes[id - 1];
    if (node === undefined) {
      throw new RangeError(`No node ${id}: the cluster has nodes 1..${this.nodes.length}`);
    }
    return node;
  }

  #logProps(node: KafkaNode, logFile = "server.log"): string[] {
    return [
      `-Dlog4j2.configurationFile=${join(node.dir, "log4j2.properties")}`,
      // kafka_2.13 logs through SLF4J, bound to slf4j-simple on this class path.
      "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
      `-Dorg.slf4j.simpleLogger.logFile=${join(node.dir, logFile)}`,
      "-Dorg.slf4j.simpleLogger.showDateTime=true",
      `-Dkafka.logs.dir=${node.dir}`,
      "-Djava.awt.headless=true",
    ];
  }

  /** Runs a Kafka tool class to completion with the node's logging setup. */
  async #java(mainClass: string, args: string[], node: KafkaNode): Promise<void> {
    await run("java", [
      "-Xshare:auto",
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      ...this.#logProps(node, "format.log"),
      "-cp",
      this.#classpath,
      mainClass,
      ...args,
    ], { timeoutMs: 120_000 });
  }

  #launch(node: KafkaNode): void {
    const child = new Deno.Command("java", {
      args: [
        "-Xshare:auto",
        ...this.#jvmArgs,
        ...this.#logProps(node),
        "-cp",
        this.#classpath,
        "kafka.Kafka",
        join(node.dir, "server.properties"),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#running.set(node.id, {
      child,
      exited: child.status,
      stderr: new Response(child.stderr).text(),
    });
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const size = this.nodes.length;
    let last = "no answer yet";
    for (;;) {
      for (const [id, r] of this.#running) {
        const status = await Promise.race([r.exited, sleep(0).then(() => null)]);
        if (status !== null) {
          throw new Error(`Node ${id} exited with ${status.code} during start-up`);
        }
      }
      try {
        const views = await Promise.all(this.nodes.map((n) => this.#metadata(n.port)));
        const bad = views.findIndex((v) => v.brokers !== size || v.controllerId < 0);
        if (bad < 0) return;
        last = `node ${bad + 1}: ${views[bad]!.brokers} brokers, controller ${
          views[bad]!.controllerId
        }`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${size} brokers (${last})`);
      }
      await sleep(200);
    }
  }

  async #metadata(port: number): Promise<{ brokers: number; controllerId: number }> {
    const conn = await KafkaConnection.connect("127.0.0.1", port, "kafka-reference", {
      timeoutMs: 2000,
    });
    try {
      const md = await conn.request(ApiKey.Metadata, 12, {
        topics: [],
        allowAutoTopicCreation: false,
      });
      return { brokers: md.brokers.length, controllerId: md.controllerId };
    } finally {
      await conn.close();
    }
  }

  /** The operating-system process id of node `id`'s JVM. */
  pid(id: number): number {
    const r = this.#running.get(id);
    if (r === undefined) throw new Error(`Node ${id} is not running`);
    return r.child.pid;
  }

  /**
   * Stops every node gracefully (SIGTERM) and starts them again on the same data; resolves
   * once the cluster answers with every broker, as after {@linkcode KafkaReference.start}.
   */
  async restart(timeoutMs = 300_000): Promise<void> {
    await this.#killAll("SIGTERM");
    for (const n of this.nodes) this.#launch(n);
    await this.#waitReady(timeoutMs);
  }

  /** Kills node `id` (SIGKILL: a crash) and waits for its JVM to exit. */
  async kill(id: number): Promise<void> {
    this.node(id);
    const r = this.#running.get(id);
    if (r === undefined) throw new Error(`Node ${id} is not running`);
    this.#running.delete(id);
    try {
      r.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await r.exited;
    await r.stderr.catch(() => "");
  }

  /** Kills every JVM; returns what each wrote to stderr. */
  async #killAll(signal: Deno.Signal = "SIGKILL"): Promise<string[]> {
    const all = [...this.#running.values()];
    this.#running.clear();
    return await Promise.all(all.map(async (r) => {
      try {
        r.child.kill(signal);
      } catch { /* already gone */ }
      const timer = signal === "SIGKILL" ? undefined : setTimeout(() => {
        try {
          r.child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 15_000);
      await r.exited;
      clearTimeout(timer);
      return await r.stderr.catch(() => "");
    }));
  }

  /**
   * Graceful shutdown (SIGTERM, SIGKILL after 15 s) of every node, then removes the
   * temporary directories.
   */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#killAll("SIGTERM");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Kills every node (SIGKILL) and removes the temporary directories. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#killAll("SIGKILL");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** log4j2 configuration: WARN and up to `<dir>/server.log`, nothing to the console. */
function log4j2Config(dir: string): string {
  return [
    "status = warn",
    "appender.file.type = File",
    "appender.file.name = FILE",
    `appender.file.fileName = ${join(dir, "server-log4j.log")}`,
    "appender.file.layout.type = PatternLayout",
    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
    "rootLogger.level = WARN",
    "rootLogger.appenderRef.file.ref = FILE",
    "",
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1" },
      config: { type: "string", multiple: true, default: [] },
      "jvm-arg": { type: "string", multiple: true },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    // deno-lint-ignore no-console -- a command-line entry point
    console.log(
      "usage: deno run --allow-all tests/_helpers/kafka_reference.ts [--size 1|3] " +
        "[--config KEY=VALUE]... [--jvm-arg FLAG]...\n" +
        `JVM flags default to ${CLI_JVM_ARGS.join(" ")} (full JIT, for benchmarks).\n` +
        "Prints the bootstrap on stdout and keeps Apache Kafka up until Ctrl-C.",
    );
    Deno.exit(0);
  }
  const size = Number(values.size);
  if (size !== 1 && size !== 3) {
    // deno-lint-ignore no-console -- a command-line entry point
    console.error(`--size must be 1 or 3, not ${values.size}`);
    Deno.exit(2);
  }
  const config: Record<string, string> = {};
  for (const kv of values.config) {
    const eq = kv.indexOf("=");
    if (eq <= 0) {
      // deno-lint-ignore no-console -- a command-line entry point
      console.error(`--config takes KEY=VALUE, not ${kv}`);
      Deno.exit(2);
    }
    config[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const began = performance.now();
  const kafka = await KafkaReference.start({
    size,
    config,
    jvmArgs: values["jvm-arg"] ?? CLI_JVM_ARGS,
  });
  // deno-lint-ignore no-console -- a command-line entry point: stdout is the bootstrap
  console.log(kafka.bootstrap);
  // deno-lint-ignore no-console -- a command-line entry point
  console.error(
    `Apache Kafka 4.1.2, ${size} node(s), cluster ${kafka.clusterId}, up in ${
      Math.round(performance.now() - began)
    } ms; logs in ${kafka.dir}/node-*/server.log; Ctrl-C stops it`,
  );
  const signal = await new Promise<Deno.Signal>((resolve) => {
    for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, () => resolve(s));
  });
  // deno-lint-ignore no-console -- a command-line entry point
  console.error(`${signal}: stopping Apache Kafka`);
  await kafka[Symbol.asyncDispose]();
  Deno.exit(0);
}
