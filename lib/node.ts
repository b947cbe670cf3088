/**
 * A Tidelog node: owns the data directory and wires metadata, partitions and the Kafka
 * listener together. `main.ts` parses flags and starts one; tests start them in-process.
 */
import { join } from "node:path";
import type { ServeOptions } from "./cli.ts";
import { DEFAULT_GROUP_CONFIG, GroupCoordinator, GroupService } from "./group/mod.ts";
import {
  type ControllerContext,
  RaftMetadataStore,
  randomUuid,
  readRecordJournal,
} from "./metadata/mod.ts";
import { ReplicaManager } from "./replication/mod.ts";
import { allHandlers, Broker, type BrokerServices, KafkaListener } from "./server/mod.ts";
import { type Clock, systemClock } from "./util/clock.ts";
import { Random } from "./util/random.ts";
import { getLogger } from "./util/log.ts";

const log = getLogger(["tidelog", "node"]);

/**
 * Data directory format written in meta.json. 1: metadata in a local journal
 * (`metadata/records.log`); 2: metadata in the Raft log (`raft/`). A format-1 directory is
 * migrated on start.
 */
const FORMAT_VERSION = 2;
/** The embedded default: this node is the only Raft voter, listening on an ephemeral port. */
const SOLE_VOTER_ADDR = "127.0.0.1:0";

/** The node cannot start with this data directory or configuration. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

interface MetaFile {
  nodeId: number;
  clusterId: string;
  formatVersion: number;
}

/**
 * Claims `dataDir` for `nodeId`: takes an exclusive lock (one process per directory),
 * and writes or checks meta.json (node id and format version must match).
 */
async function claimDataDir(
  dataDir: string,
  nodeId: number,
): Promise<{ lock: Deno.FsFile; meta: MetaFile | null }> {
  await Deno.mkdir(dataDir, { recursive: true });
  const lock = await Deno.open(join(dataDir, ".lock"), { read: true, write: true, create: true });
  try {
    // Non-blocking would be nicer, but Deno only offers a blocking lock; a short race
    // is acceptable, two live nodes on one directory is not.
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new StartupError(`Data directory ${dataDir} is in use by another process`)),
        2000,
      )
    );
    await Promise.race([lock.lock(true), timeout]);
  } catch (err) {
    lock.close();
    throw err;
  }
  let meta: MetaFile | null = null;
  try {
    meta = JSON.parse(await Deno.readTextFile(join(dataDir, "meta.json"))) as MetaFile;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      lock.close();
      throw new StartupError(
        `Cannot read ${join(dataDir, "meta.json")}: ${(err as Error).message}`,
      );
    }
  }
  if (meta && meta.nodeId !== nodeId) {
    lock.close();
    throw new StartupError(
      `Data directory ${dataDir} belongs to node ${meta.nodeId}, not node ${nodeId}; use --node-id ${meta.nodeId} or another --data-dir`,
    );
  }
  if (meta && meta.formatVersion !== FORMAT_VERSION && meta.formatVersion !== 1) {
    lock.close();
    throw new StartupError(
      `Data directory ${dataDir} has format ${meta.formatVersion}; this build reads ${FORMAT_VERSION}`,
    );
  }
  return { lock, meta };
}

/**
 * Moves the metadata of a format-1 directory (a local record journal) into the Raft log,
 * once: the journal's records are proposed as one entry, then the journal is renamed.
 */
async function migrateJournal(dataDir: string, store: RaftMetadataStore): Promise<void> {
  const path = join(dataDir, "metadata", "records.log");
  try {
    await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const records = await readRecordJournal(path);
  if (store.image.offset === 0 && records.length > 0) {
    await store.propose(() => ({ records, result: undefined }));
  }
  await Deno.rename(path, `${path}.migrated`);
  using dir = await Deno.open(join(dataDir, "metadata"), { read: true });
  await dir.sync();
  log.info("Moved {count} metadata records from {path} into the Raft log", {
    count: records.length,
    path,
  });
}

async function writeMeta(dataDir: string, meta: MetaFile): Promise<void> {
  const path = join(dataDir, "meta.json");
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(meta, null, 2) + "\n");
  {
    using f = await Deno.open(tmp, { read: true, write: true });
    await f.sync();
  }
  await Deno.rename(tmp, path);
  using dir = await Deno.open(dataDir, { read: true });
  await dir.sync();
}

/** A running node. */
export class Node {
  readonly #listener: KafkaListener;
  readonly #store: RaftMetadataStore;
  readonly #replicas: ReplicaManager;
  readonly #groups: GroupService;
  readonly #lock: Deno.FsFile;
  readonly #retentionTimer: ReturnType<typeof setInterval>;
  #retentionRunning = false;
  #stopped: Promise<void> | null = null;

  private constructor(
    listener: KafkaListener,
    store: RaftMetadataStore,
    replicas: ReplicaManager,
    groups: GroupService,
    lock: Deno.FsFile,
    retentionCheckIntervalMs: number,
  ) {
    this.#listener = listener;
    this.#store = store;
    this.#replicas = replicas;
    this.#groups = groups;
    this.#lock = lock;
    this.#retentionTimer = setInterval(() => this.runRetention(), retentionCheckIntervalMs);
  }

  /** Opens the data directory, recovers every log and starts listening. */
  static async start(options: ServeOptions, deps: { clock?: Clock } = {}): Promise<Node> {
    const clock = deps.clock ?? systemClock;
    const { lock, meta } = await claimDataDir(options.dataDir, options.nodeId);
    let store: RaftMetadataStore | undefined;
    let replicas: ReplicaManager | undefined;
    try {
      store = await RaftMetadataStore.start({
        nodeId: options.nodeId,
        voters: new Map([[options.nodeId, SOLE_VOTER_ADDR]]),
        dataDir: options.dataDir,
      });
      await migrateJournal(options.dataDir, store);
      if (store.image.clusterId === null) {
        const clusterId = meta?.clusterId ?? randomUuid();
        await store.propose(() => ({
          records: [{ type: "Cluster", clusterId }],
          result: undefined,
        }));
      }
      const clusterId = store.image.clusterId!;
      if (meta && meta.clusterId !== clusterId) {
        throw new StartupError(
          `Data directory ${options.dataDir} is for cluster ${meta.clusterId}, but its metadata says ${clusterId}`,
        );
      }
      if (!meta || meta.formatVersion !== FORMAT_VERSION) {
        await writeMeta(options.dataDir, {
          nodeId: options.nodeId,
          clusterId,
          formatVersion: FORMAT_VERSION,
        });
      }

      replicas = new ReplicaManager({
        topicsDir: join(options.dataDir, "topics"),
        nodeId: options.nodeId,
        flush: options.flush,
        clock,
      });
      await replicas.applyImage(store.image);
      const groups = new GroupService(
        new GroupCoordinator({
          ...DEFAULT_GROUP_CONFIG,
          initialRebalanceDelayMs: options.groupInitialRebalanceDelayMs,
          minSessionTimeoutMs: options.groupMinSessionTimeoutMs,
          maxSessionTimeoutMs: options.groupMaxSessionTimeoutMs,
        }, { random: Random.fromCrypto() }),
        { replicas, clock },
      );
      groups.syncPartitions();
      const r = replicas;
      store.onChange(async (_prev, next) => {
        await r.applyImage(next);
        groups.syncPartitions();
      });

      let listener: KafkaListener;
      const services: BrokerServices = {
        config: {
          nodeId: options.nodeId,
          advertisedHost: options.advertisedHost,
          advertisedPort: options.advertisedPort,
          autoCreateTopics: options.autoCreateTopics,
          numPartitions: options.numPartitions,
          defaultReplicationFactor: options.defaultReplicationFactor,
          maxRequestBytes: options.maxRequestBytes,
        },
        metadata: store,
        replicas,
        groups,
        clock,
        controllerContext: (): ControllerContext => ({
          liveBrokers: [options.nodeId],
          defaults: {
            numPartitions: options.numPartitions,
            defaultReplicationFactor: options.defaultReplicationFactor,
          },
          newTopicId: randomUuid,
        }),
      };
      const broker: Broker = new Broker(services, allHandlers(() => broker.apiVersions()));
      try {
        listener = KafkaListener.listen(
          {
            hostname: options.kafkaHost,
            port: options.kafkaPort,
            maxRequestBytes: options.maxRequestBytes,
          },
          broker,
        );
      } catch (err) {
        throw new StartupError(
          `Cannot listen on ${options.kafkaHost}:${options.kafkaPort}: ${(err as Error).message}`,
        );
      }
      if (options.advertisedPort === 0) services.config.advertisedPort = listener.addr.port;
      log.info(
        "Node {nodeId} of cluster {clusterId} serving Kafka on {addr} (advertised {advertised}), data in {dir}",
        {
          nodeId: options.nodeId,
          clusterId,
          addr: `${listener.addr.hostname}:${listener.addr.port}`,
          advertised: `${services.config.advertisedHost}:${services.config.advertisedPort}`,
          dir: options.dataDir,
        },
      );
      return new Node(listener, store, replicas, groups, lock, options.retentionCheckIntervalMs);
    } catch (err) {
      await replicas?.close();
      await store?.close();
      lock.close();
      throw err;
    }
  }

  /** The bound Kafka address. */
  get kafkaAddr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** Runs retention now (it also runs every --retention-check-interval-ms). */
  async runRetention(): Promise<void> {
    if (this.#retentionRunning) return;
    this.#retentionRunning = true;
    try {
      await this.#replicas.applyRetention();
    } catch (err) {
      log.error("Retention failed: {error}", { error: err });
    } finally {
      this.#retentionRunning = false;
    }
  }

  /** Stops accepting, closes connections, flushes and closes every log. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      clearInterval(this.#retentionTimer);
      await this.#listener.close();
      this.#groups.close();
      await this.#store.close();
      await this.#replicas.close();
      this.#lock.close();
      log.info("Node stopped");
    })();
    return this.#stopped;
  }
}
