/**
 * A real N-node Tidelog cluster for integration and chaos tests: one `deno run main.ts
 * serve` process per node on 127.0.0.1 (or on the addresses a {@linkcode ClusterNetwork}
 * gives, e.g. one network namespace per node), each with fixed Kafka and Raft ports
 * (chosen once, so a restarted node comes back on the same addresses and data directory).
 *
 * ```ts
 * await using cluster = await TestCluster.start();
 * await cluster.waitForBrokers(3);
 * await cluster.createTopic("t", 6, 3);
 * const { leader } = await cluster.leaderOf("t", 0);
 * await cluster.kill(leader);
 * ```
 */
import { join } from "node:path";
import { KafkaConnection } from "../../lib/client/mod.ts";
import {
  ApiKey,
  ErrorCode,
  errorName,
  type MetadataResponse,
  ZERO_UUID,
} from "../../lib/protocol/mod.ts";
import { freePort, NodeProcess } from "./node_process.ts";

/** One node of a {@linkcode TestCluster}. */
export interface ClusterNode {
  readonly id: number;
  /** The Kafka listener's (and advertised) host. @default "127.0.0.1" */
  readonly kafkaHost: string;
  readonly kafkaPort: number;
  /** The Raft listener's host. @default "127.0.0.1" */
  readonly raftHost: string;
  readonly raftPort: number;
  /** The HTTP listener's port on 127.0.0.1 (with `http: true`), else null. */
  readonly httpPort: number | null;
  readonly dataDir: string;
  /** The running process; null while the node is down. */
  process: NodeProcess | null;
}

/** Options of {@linkcode TestCluster.start}. */
export interface TestClusterOptions {
  /** Number of nodes (ids 1..size). @default 3 */
  size?: number;
  /** Extra `serve` flags for every node; they win over the harness's defaults. */
  args?: string[];
  /** Parent directory of the nodes' data dirs; default: a fresh temp dir removed on close. */
  dir?: string;
  /** Where each node listens and how it is run; default: all on 127.0.0.1, run directly. */
  network?: ClusterNetwork;
  /** Give each node an HTTP listener on 127.0.0.1 (`httpPort`). @default false */
  http?: boolean;
}

/**
 * The addresses of each node and the command prefix it runs under, for clusters whose
 * nodes do not all share 127.0.0.1 (see `netns.ts`). The Kafka host must be reachable
 * from the test process.
 */
export interface ClusterNetwork {
  kafkaHost(id: number): string;
  raftHost(id: number): string;
  /** A prefix that execs node `id` (`["ip", "netns", "exec", NS]`); default none. */
  command?(id: number): string[];
}

/** Test timings: fence a silent broker and shrink the ISR quickly. */
const DEFAULT_ARGS = ["--broker-session-timeout-ms", "1500", "--replica-lag-time-max-ms", "2000"];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `count` distinct free ports. */
function freePorts(count: number): number[] {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(freePort());
  return [...ports];
}

/** A running cluster of node processes; `close()` (or `await using`) kills them all. */
export class TestCluster implements AsyncDisposable {
  /** Index i holds node id i + 1. */
  readonly nodes: ClusterNode[];
  readonly #dir: string;
  readonly #ownsDir: boolean;
  readonly #args: string[];
  readonly #network: ClusterNetwork | undefined;
  readonly #last = new Map<number, NodeProcess>();
  /** Every process ever started, so `close()` can drain their output. */
  readonly #all: NodeProcess[] = [];
  readonly #connections = new Set<KafkaConnection>();
  #closed = false;

  private constructor(
    dir: string,
    ownsDir: boolean,
    size: number,
    options: { args: string[]; network?: ClusterNetwork | undefined; http?: boolean },
  ) {
    this.#dir = dir;
    this.#ownsDir = ownsDir;
    this.#args = options.args;
    this.#network = options.network;
    const ports = freePorts(3 * size);
    this.nodes = Array.from({ length: size }, (_, i) => ({
      id: i + 1,
      kafkaHost: options.network?.kafkaHost(i + 1) ?? "127.0.0.1",
      kafkaPort: ports[3 * i]!,
      raftHost: options.network?.raftHost(i + 1) ?? "127.0.0.1",
      raftPort: ports[3 * i + 1]!,
      httpPort: options.http ? ports[3 * i + 2]! : null,
      dataDir: join(dir, `node-${i + 1}`),
      process: null,
    }));
  }

  /** Starts every node concurrently; resolves once each accepts Kafka connections. */
  static async start(options: TestClusterOptions = {}): Promise<TestCluster> {
    const size = options.size ?? 3;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`Cannot start a cluster of ${size} nodes: need at least 1`);
    }
    const dir = options.dir ?? await Deno.makeTempDir({ prefix: "tidelog-cluster-" });
    const cluster = new TestCluster(dir, options.dir === undefined, size, {
      args: options.args ?? [],
      network: options.network,
      http: options.http,
    });
    try {
      await Promise.all(cluster.nodes.map((n) => cluster.#launch(n)));
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** The `--peers` value: every node's Raft address. */
  get peers(): string {
    return this.nodes.map((n) => `${n.id}@${n.raftHost}:${n.raftPort}`).join(",");
  }

  async #launch(node: ClusterNode): Promise<void> {
    if (this.#closed) throw new Error(`Cannot start node ${node.id}: the cluster is closed`);
    const process = await NodeProcess.start({
      dataDir: node.dataDir,
      host: node.kafkaHost,
      port: node.kafkaPort,
      nodeId: node.id,
      command: this.#network?.command?.(node.id) ?? [],
      args: [
        "--raft-addr",
        `${node.raftHost}:${node.raftPort}`,
        "--peers",
        this.peers,
        ...(node.httpPort === null ? [] : ["--http-addr", `127.0.0.1:${node.httpPort}`]),
        ...DEFAULT_ARGS,
        // node:util parseArgs keeps the last value of a repeated flag: these win.
        ...this.#args,
      ],
    });
    node.process = process;
    this.#last.set(node.id, process);
    this.#all.push(process);
  }

  /** The node with this id. */
  node(id: number): ClusterNode {
    const node = this.nodes[id - 1];
    if (node === undefined) {
      throw new RangeError(`No node ${id}: the cluster has nodes 1..${this.nodes.length}`);
    }
    return node;
  }

  /** Nodes that are running (possibly paused). */
  #live(): ClusterNode[] {
    return this.nodes.filter((n) => n.process !== null);
  }

  #firstLive(): ClusterNode {
    const node = this.#live()[0];
    if (node === undefined) throw new Error("No node of the cluster is running");
    return node;
  }

  /** `host:port,...` (Kafka listeners) of the live nodes, or of `ids`. */
  bootstrap(ids?: number[]): string {
    const nodes = ids === undefined ? this.#live() : ids.map((id) => this.node(id));
    return nodes.map((n) => `${n.kafkaHost}:${n.kafkaPort}`).join(",");
  }

  /** A new connection to node `id`'s Kafka port (closed by `close()` if still open). */
  async connect(id: number): Promise<KafkaConnection> {
    const node = this.node(id);
    const conn = await KafkaConnection.connect(node.kafkaHost, node.kafkaPort);
    this.#connections.add(conn);
    conn.closed.finally(() => this.#connections.delete(conn));
    return conn;
  }

  /** Metadata from node `id` over a fresh connection; `null` topics: all topics. */
  async metadata(id: number, topics: string[] | null, version = 12): Promise<MetadataResponse> {
    const conn = await this.connect(id);
    try {
      return await conn.request(ApiKey.Metadata, version, {
        // v0 has no null: an empty list means all topics.
        topics: topics === null
          ? version === 0 ? [] : null
          : topics.map((name) => ({ name, topicId: ZERO_UUID })),
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      });
    } finally {
      await conn.close();
    }
  }

  /**
   * Polls `probe` every `intervalMs` until it returns a value other than undefined, null
   * or false, and resolves with it. A probe that throws counts as not yet. Throws
   * `Timed out waiting for <what>` (with the last error or value) after `timeoutMs`.
   */
  async waitFor<T>(
    what: string,
    probe: () => Promise<T | undefined | null | false>,
    timeoutMs = 30_000,
    intervalMs = 50,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      try {
        const value = await probe();
        if (value !== undefined && value !== null && value !== false) return value;
        last = `last result: ${String(value)}`;
      } catch (err) {
        last = `last error: ${(err as Error).message ?? String(err)}`;
      }
      if (Date.now() >= deadline) {
        throw new Error(`Timed out waiting for ${what} after ${timeoutMs} ms (${last})`);
      }
      await sleep(intervalMs);
    }
  }

  /** Waits until every live node's Metadata lists `count` brokers and one controller. */
  async waitForBrokers(count: number, timeoutMs = 30_000): Promise<void> {
    await this.waitFor(`${count} brokers and one controller on every live node`, async () => {
      const live = this.#live();
      if (live.length === 0) throw new Error("No node of the cluster is running");
      const views = await Promise.all(live.map((n) => this.metadata(n.id, [])));
      const controllers = new Set(views.map((v) => v.controllerId));
      const counts = views.map((v) => v.brokers.length);
      if (counts.some((c) => c !== count) || controllers.size !== 1 || [...controllers][0]! < 0) {
        throw new Error(
          `brokers per node ${counts.join("/")}, controllers ${[...controllers].join("/")}`,
        );
      }
      return true;
    }, timeoutMs);
  }

  /** The controller id as a live node reports it, once there is one. */
  controllerId(): Promise<number> {
    return this.waitFor("a controller", async () => {
      const { controllerId } = await this.metadata(this.#firstLive().id, []);
      return controllerId >= 0 ? controllerId : undefined;
    });
  }

  /**
   * Creates a topic with CreateTopics v7 through `viaNode` (default: the first live node)
   * once that node lists a controller and min(replicationFactor, live nodes) brokers,
   * and waits until every live node's Metadata shows each partition with a leader.
   * NOT_CONTROLLER (no controller yet, or it just moved) and connection errors are
   * retried for 30 s (without `viaNode`, the retry goes to the reported controller); any
   * other error code throws {@linkcode CreateTopicError} at once.
   */
  async createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string> = {},
    viaNode?: number,
  ): Promise<void> {
    // Fresh clusters: wait for a controller and for enough registered brokers, so a
    // replication factor the live nodes can meet is not refused while they register.
    const needed = Math.min(replicationFactor, this.#live().length);
    await this.waitFor(`${needed} brokers and a controller before creating ${name}`, async () => {
      const md = await this.metadata(viaNode ?? this.#firstLive().id, []);
      return md.controllerId >= 0 && md.brokers.length >= needed;
    });
    const deadline = Date.now() + 30_000;
    let via = viaNode ?? this.#firstLive().id;
    let uncertain = false; // an earlier attempt may have created it
    for (;;) {
      const result = await this.#createTopicOnce(via, name, partitions, replicationFactor, configs)
        .catch((err: Error) => ({ errorCode: -2, errorMessage: err.message }));
      if (result.errorCode === ErrorCode.NONE) break;
      if (result.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS && uncertain) break;
      if (result.errorCode === -2) uncertain = true;
      // NOT_CONTROLLER: no controller yet, or it moved; a connection error: the node
      // is (re)starting. Both are retried; any other code is final.
      if (result.errorCode !== ErrorCode.NOT_CONTROLLER && result.errorCode !== -2) {
        throw new CreateTopicError(
          `CreateTopics ${name} failed: ${errorName(result.errorCode)}` +
            (result.errorMessage ? ` (${result.errorMessage})` : ""),
        );
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `Timed out waiting for CreateTopics ${name} after 30000 ms (last: ${
            result.errorCode === -2 ? result.errorMessage : errorName(result.errorCode)
          })`,
        );
      }
      await sleep(100);
      if (viaNode === undefined && result.errorCode === ErrorCode.NOT_CONTROLLER) {
        // As a client does: ask the controller itself next.
        const controller = await this.metadata(this.#firstLive().id, [])
          .then((md) => md.controllerId, () => -1);
        via = controller >= 0 && this.node(controller).process !== null
          ? controller
          : this.#firstLive().id;
      }
    }
    await this.waitFor(
      `every partition of ${name} to have a leader on every live node`,
      async () => {
        for (const n of this.#live()) {
          const md = await this.metadata(n.id, [name]);
          const topic = md.topics.find((t) => t.name === name);
          if (
            topic === undefined || topic.errorCode !== ErrorCode.NONE ||
            topic.partitions.length !== partitions || topic.partitions.some((p) => p.leaderId < 0)
          ) {
            throw new Error(
              `node ${n.id}: ${
                topic === undefined
                  ? "no topic"
                  : `${errorName(topic.errorCode)}, leaders ${
                    topic.partitions.map((p) => p.leaderId).join(",")
                  }`
              }`,
            );
          }
        }
        return true;
      },
    );
  }

  async #createTopicOnce(
    via: number,
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
  ): Promise<{ errorCode: number; errorMessage: string | null }> {
    const conn = await this.connect(via);
    try {
      const res = await conn.request(ApiKey.CreateTopics, 7, {
        topics: [{
          name,
          numPartitions: partitions,
          replicationFactor,
          assignments: [],
          configs: Object.entries(configs).map(([k, value]) => ({ name: k, value })),
        }],
        timeoutMs: 30_000,
        validateOnly: false,
      });
      const result = res.topics[0];
      if (result === undefined) throw new Error(`CreateTopics ${name}: no result`);
      return result;
    } finally {
      await conn.close();
    }
  }

  /** Leader, epoch, ISR and replicas of one partition, as `viaNode` (default: first live) sees it. */
  async leaderOf(
    topic: string,
    partition: number,
    viaNode?: number,
  ): Promise<{ leader: number; leaderEpoch: number; isr: number[]; replicas: number[] }> {
    const via = viaNode ?? this.#firstLive().id;
    const md = await this.metadata(via, [topic]);
    const t = md.topics.find((x) => x.name === topic);
    const p = t?.partitions.find((x) => x.partitionIndex === partition);
    if (t === undefined || p === undefined) {
      throw new Error(
        `Node ${via} does not know ${topic}-${partition}` +
          (t ? ` (${errorName(t.errorCode)})` : ""),
      );
    }
    return {
      leader: p.leaderId,
      leaderEpoch: p.leaderEpoch,
      isr: [...p.isrNodes],
      replicas: [...p.replicaNodes],
    };
  }

  #running(id: number): NodeProcess {
    const process = this.node(id).process;
    if (process === null) throw new Error(`Node ${id} is not running`);
    return process;
  }

  /** Sends `signal` (default SIGKILL: a crash) to node `id` and waits for it to exit. */
  async kill(id: number, signal: Deno.Signal = "SIGKILL"): Promise<void> {
    const process = this.#running(id);
    await process.kill(signal);
    this.node(id).process = null;
  }

  /** Freezes node `id` (SIGSTOP): it keeps its sockets but answers nothing. */
  pause(id: number): void {
    this.#running(id).signal("SIGSTOP");
  }

  /** Lets a paused node run again (SIGCONT). */
  resume(id: number): void {
    this.#running(id).signal("SIGCONT");
  }

  /** Graceful stop (SIGTERM) of node `id`; waits for it to exit. */
  async stop(id: number): Promise<void> {
    const process = this.#running(id);
    // A paused process would hold SIGTERM until resumed.
    process.signal("SIGCONT");
    await process.stop();
    this.node(id).process = null;
  }

  /** Starts node `id` again on its ports and data dir; a running node is stopped first. */
  async restart(id: number): Promise<void> {
    const node = this.node(id);
    if (node.process !== null) await this.stop(id);
    await this.#launch(node);
  }

  /** Everything the last process of node `id` wrote to stderr; the process must have exited. */
  output(id: number): Promise<string> {
    const node = this.node(id);
    const last = this.#last.get(id);
    if (last === undefined) return Promise.reject(new Error(`Node ${id} never started`));
    if (node.process === last) {
      return Promise.reject(new Error(`Node ${id} is still running; kill or stop it first`));
    }
    return last.output();
  }

  /** Kills every node (SIGKILL), closes open connections and removes the temp dir. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#connections].map((c) => c.close().catch(() => {})));
    await Promise.all(this.nodes.map(async (n) => {
      const process = n.process;
      n.process = null;
      if (process !== null) await process.kill("SIGKILL");
    }));
    // Drain the piped stderr of every process so no resource is left open.
    await Promise.all(this.#all.map((p) => p.output().catch(() => "")));
    if (this.#ownsDir) await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** CreateTopics answered with an error code other than NOT_CONTROLLER. */
export class CreateTopicError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CreateTopicError";
  }
}
