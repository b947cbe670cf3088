/** Starts a Tidelog node inside the test process on a free port, with a temp data dir. */
import type { ServeOptions } from "../../lib/cli.ts";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { Node } from "../../lib/node.ts";
import type { Clock } from "../../lib/util/clock.ts";

/** A node plus a connected client; disposing stops both and removes the data. */
export interface TestNode extends AsyncDisposable {
  node: Node;
  port: number;
  dataDir: string;
  /** A fresh connection to the node. */
  connect(): Promise<KafkaConnection>;
  /** Stops the node (keeping its data) and starts a new one on the same directory. */
  restart(): Promise<void>;
}

/** Starts a node with test-friendly defaults; `overrides` replace any option. */
export async function startTestNode(
  overrides: Partial<ServeOptions> = {},
  deps: { clock?: Clock } = {},
): Promise<TestNode> {
  const dataDir = overrides.dataDir ?? await Deno.makeTempDir({ prefix: "tidelog-node-" });
  const options: ServeOptions = {
    nodeId: 1,
    kafkaHost: "127.0.0.1",
    kafkaPort: 0,
    advertisedHost: "127.0.0.1",
    advertisedPort: 0,
    dataDir,
    flush: { kind: "always" },
    maxRequestBytes: 1024 * 1024,
    autoCreateTopics: true,
    numPartitions: 1,
    defaultReplicationFactor: 1,
    retentionCheckIntervalMs: 3_600_000,
    groupInitialRebalanceDelayMs: 0,
    groupMinSessionTimeoutMs: 1000,
    groupMaxSessionTimeoutMs: 1_800_000,
    logLevel: "warning",
    voters: new Map([[overrides.nodeId ?? 1, "127.0.0.1:0"]]),
    raftListenAddr: "127.0.0.1:0",
    replicaLagTimeMaxMs: 5000,
    brokerSessionTimeoutMs: 1500,
    brokerHeartbeatIntervalMs: 250,
    leaderImbalanceCheckIntervalMs: 30_000,
    uncleanLeaderElection: false,
    logCleanerDedupeBufferBytes: 16 * 1024 * 1024,
    logCleanerIoMaxBytesPerSecond: 0,
    logCleanerBackoffMs: 15_000,
    transactionMaxTimeoutMs: 900_000,
    httpAddr: null,
    staticBrokerConfigs: {},
    logFormat: "text",
    unusedConfigKeys: [],
    ...overrides,
  };
  const connections: KafkaConnection[] = [];
  const state = { node: await Node.start(options, deps) };
  options.kafkaPort = state.node.kafkaAddr.port;
  options.advertisedPort = options.kafkaPort;
  return {
    get node() {
      return state.node;
    },
    port: options.kafkaPort,
    dataDir,
    async connect() {
      const c = await KafkaConnection.connect("127.0.0.1", options.kafkaPort);
      connections.push(c);
      return c;
    },
    async restart() {
      await state.node.stop();
      state.node = await Node.start(options, deps);
    },
    async [Symbol.asyncDispose]() {
      for (const c of connections) await c.close();
      await state.node.stop();
      if (!overrides.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}
