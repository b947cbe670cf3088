/**
 * A Tidelog node: owns the data directory and wires metadata, partitions and the Kafka
 * listener together. `main.ts` parses flags and starts one; tests start them in-process.
 */
import { join } from "node:path";
import type { ServeOptions } from "./cli.ts";
import { DEFAULT_GROUP_CONFIG, GroupCoordinator, GroupService } from "./group/mod.ts";
import { BrokerConnections } from "./client/mod.ts";
import { ProducerIdManager } from "./producer/mod.ts";
import { writeMarkersLocally } from "./server/handlers/write_txn_markers.ts";
import { DEFAULT_TXN_CONFIG, MarkerChannel, TxnCoordinator, TxnService } from "./txn/mod.ts";
import { HttpServer } from "./http/mod.ts";
import { BrokerMetrics, registerNodeGauges } from "./server/broker_metrics.ts";
import { AdminView } from "./server/admin_view.ts";
import {
  BrokerLifecycle,
  ControllerChannel,
  type ControllerContext,
  ControllerService,
  RaftMetadataStore,
  randomUuid,
  readRecordJournal,
} from "./metadata/mod.ts";
import { ReplicaManager } from "./replication/mod.ts";
import { allHandlers, Broker, type BrokerServices, KafkaListener } from "./server/mod.ts";
import {
  ensureDir,
  type FileHandle,
  type FileSystem,
  type NetAddr,
  type Runtime,
  sleep,
  syncDir,
  systemRuntime,
  type Timers,
} from "./runtime/mod.ts";
import type { Clock } from "./util/clock.ts";
import { Random } from "./util/random.ts";
import { getLogger } from "./util/log.ts";
import { crc32cImplementation } from "./util/crc32c.ts";

const log = getLogger(["tidelog", "node"]);

/**
 * Data directory format written in meta.json. 1: metadata in a local journal
 * (`metadata/records.log`); 2: metadata in the Raft log (`raft/`). A format-1 directory is
 * migrated on start.
 */
const FORMAT_VERSION = 2;
/** How long SIGTERM waits for the controller to move this broker's leaderships away. */
const CONTROLLED_SHUTDOWN_TIMEOUT_MS = 5000;
/**
 * Raft tick: heartbeats every tick, elections after 10-20 ticks without a leader, so a
 * dead controller is replaced in 0.5-1 s (its partitions then move within the grace
 * ControllerService gives a previous controller).
 */
const RAFT_TICK_MS = 50;
/** How often a broker checks that its session with the controller is still valid. */
const QUORUM_CHECK_MS = 50;
/** How often the node checks whether its metadata store has failed. */
const FAILURE_CHECK_MS = 100;
/** How long start-up waits to be unfenced before serving anyway. */
const UNFENCE_WAIT_MS = 30_000;

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
  rt: Runtime,
  dataDir: string,
  nodeId: number,
): Promise<{ lock: FileHandle; meta: MetaFile | null }> {
  const { fs, timers } = rt;
  await ensureDir(fs, dataDir);
  const lock = await fs.open(join(dataDir, ".lock"), { read: true, write: true, create: true });
  let timer: ReturnType<Timers["setTimeout"]> | undefined;
  try {
    // Non-blocking would be nicer, but Deno only offers a blocking lock; a short race
    // is acceptable, two live nodes on one directory is not.
    const timeout = new Promise<never>((_, reject) => {
      timer = timers.setTimeout(
        () => reject(new StartupError(`Data directory ${dataDir} is in use by another process`)),
        2000,
      );
    });
    await Promise.race([lock.lock(true), timeout]);
  } catch (err) {
    lock.close();
    throw err;
  } finally {
    timers.clearTimeout(timer);
  }
  let meta: MetaFile | null = null;
  try {
    meta = JSON.parse(await fs.readTextFile(join(dataDir, "meta.json"))) as MetaFile;
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
async function migrateJournal(
  fs: FileSystem,
  dataDir: string,
  store: RaftMetadataStore,
): Promise<void> {
  const path = join(dataDir, "metadata", "records.log");
  try {
    await fs.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const records = await readRecordJournal(fs, path);
  if (store.image.offset === 0 && records.length > 0) {
    await store.propose(() => ({ records, result: undefined }));
  }
  await fs.rename(path, `${path}.migrated`);
  await syncDir(fs, join(dataDir, "metadata"));
  log.info("Moved {count} metadata records from {path} into the Raft log", {
    count: records.length,
    path,
  });
}

async function writeMeta(fs: FileSystem, dataDir: string, meta: MetaFile): Promise<void> {
  const path = join(dataDir, "meta.json");
  const tmp = `${path}.tmp`;
  await fs.writeTextFile(tmp, JSON.stringify(meta, null, 2) + "\n");
  {
    using f = await fs.open(tmp, { read: true, write: true });
    await f.sync();
  }
  await fs.rename(tmp, path);
  await syncDir(fs, dataDir);
}

/** The parts of a node that tests of a whole cluster check invariants on. */
export interface NodeParts {
  readonly store: RaftMetadataStore;
  readonly replicas: ReplicaManager;
}

/** How often the event loop's lateness is measured (tidelog_event_loop_lag_ms). */
const LAG_CHECK_MS = 500;

/** What /ready reads. */
interface ReadinessView {
  lifecycle: BrokerLifecycle | undefined;
  quorumLost: boolean;
  stopping: boolean;
}

/** Why the node is not ready to serve, or null if it is (GET /ready). */
function notReadyReason(view: ReadinessView): string | null {
  if (view.stopping) return "shutting down";
  const lc = view.lifecycle;
  if (lc === undefined) return "starting: recovering logs and joining the metadata quorum";
  if (lc.brokerEpoch < 0) return "not registered with the controller yet";
  if (lc.fenced) {
    return "fenced: the controller has not unfenced this broker (catching up with the metadata log, or cut off from it)";
  }
  if (view.quorumLost) return "cut off from the controller quorum";
  return null;
}

/** A running node. */
export class Node {
  readonly #listener: KafkaListener;
  readonly #store: RaftMetadataStore;
  readonly #replicas: ReplicaManager;
  readonly #groups: GroupService;
  readonly #txn: TxnService;
  readonly #brokers: BrokerConnections;
  readonly #http: HttpServer | undefined;
  readonly #view: ReadinessView;
  readonly #lagTimer: ReturnType<Timers["setInterval"]>;
  readonly #controller: ControllerService;
  readonly #channel: ControllerChannel;
  readonly #lifecycle: BrokerLifecycle;
  readonly #lock: FileHandle;
  readonly #clustered: boolean;
  readonly #runtime: Runtime;
  readonly #retentionTimer: ReturnType<Timers["setInterval"]>;
  readonly #failureWatch: ReturnType<Timers["setInterval"]>;
  readonly #quorumWatch: ReturnType<Timers["setInterval"]>;
  #quorumLost = false;
  #retentionRunning = false;
  #stopped: Promise<void> | null = null;

  private constructor(parts: {
    listener: KafkaListener;
    store: RaftMetadataStore;
    replicas: ReplicaManager;
    groups: GroupService;
    txn: TxnService;
    brokers: BrokerConnections;
    http: HttpServer | undefined;
    view: ReadinessView;
    lagTimer: ReturnType<Timers["setInterval"]>;
    controller: ControllerService;
    channel: ControllerChannel;
    lifecycle: BrokerLifecycle;
    lock: FileHandle;
    clustered: boolean;
    runtime: Runtime;
    failureWatch: ReturnType<Timers["setInterval"]>;
    sessionTimeoutMs: number;
    retentionCheckIntervalMs: number;
  }) {
    this.#listener = parts.listener;
    this.#store = parts.store;
    this.#replicas = parts.replicas;
    this.#groups = parts.groups;
    this.#txn = parts.txn;
    this.#brokers = parts.brokers;
    this.#http = parts.http;
    this.#view = parts.view;
    this.#lagTimer = parts.lagTimer;
    this.#controller = parts.controller;
    this.#channel = parts.channel;
    this.#lifecycle = parts.lifecycle;
    this.#lock = parts.lock;
    this.#clustered = parts.clustered;
    this.#runtime = parts.runtime;
    this.#retentionTimer = parts.runtime.timers.setInterval(
      () => this.runRetention(),
      parts.retentionCheckIntervalMs,
    );
    this.#failureWatch = parts.failureWatch;
    // A broker cut off from the controller quorum for its session stops leading (the
    // controller has fenced it, or is about to): clients then get NOT_LEADER_OR_FOLLOWER
    // and find the new leader, instead of waiting on one that cannot replicate.
    const { clock } = parts.runtime;
    // As the controller's tracker: a gap between two checks of over half a session (this
    // process stalled, or the clock jumped) is no silence of the quorum's; count from
    // the resume, so that the heartbeats sent since can answer first.
    let lastCheckMs = clock.nowMs();
    let resumedMs = lastCheckMs;
    this.#quorumWatch = parts.runtime.timers.setInterval(() => {
      const now = clock.nowMs();
      if (now - lastCheckMs > parts.sessionTimeoutMs / 2) resumedMs = now;
      lastCheckMs = now;
      const sent = this.#lifecycle.lastAckedHeartbeatSentMs;
      const lost = sent >= 0 && now - Math.max(sent, resumedMs) > parts.sessionTimeoutMs;
      if (lost !== this.#quorumLost) {
        this.#quorumLost = lost;
        this.#view.quorumLost = lost;
        // The group coordinator follows the offsets partitions this node leads.
        // A failure to apply the image stops the node (onStorageFailure); nothing to add.
        this.#replicas.setQuorumLost(lost).then(() => {
          this.#groups.syncPartitions();
          this.#txn.syncPartitions();
        }).catch(
          (err) => log.debug("Re-applying the image failed: {error}", { error: String(err) }),
        );
      }
    }, QUORUM_CHECK_MS);
  }

  /**
   * Opens the data directory, recovers every log, joins the metadata quorum (waiting for
   * the cluster id, which needs a quorum), starts listening, registers as a broker and
   * waits (bounded) until the controller has unfenced it.
   */
  static async start(
    options: ServeOptions,
    deps: {
      clock?: Clock;
      runtime?: Runtime;
      /**
       * Called with the metadata store and the partitions as soon as both exist, before
       * the node has registered (the whole-cluster simulation watches a restarting node).
       */
      observe?: (parts: NodeParts) => void;
      /**
       * Called once when the node cannot go on: a partition log or the Raft log failed (an
       * fsync or write error). The process should exit (main.ts exits 1), as Kafka halts a
       * broker whose only log directory failed; the controller then fences it and moves
       * its leaderships. Without it the node halts itself (closes everything, no
       * controlled shutdown).
       */
      onFatal?: (err: Error) => void;
    } = {},
  ): Promise<Node> {
    const base = deps.runtime ?? systemRuntime();
    const rt: Runtime = deps.clock ? { ...base, clock: deps.clock } : base;
    const { clock, timers, fs, net, random } = rt;
    const { lock, meta } = await claimDataDir(rt, options.dataDir, options.nodeId);
    // What /ready reads while the node starts, serves and stops.
    const view: ReadinessView = { lifecycle: undefined, quorumLost: false, stopping: false };
    const metrics = new BrokerMetrics();
    // The JSON API's views, once the parts they read exist (503 before).
    let views: AdminView | undefined;
    let http: HttpServer | undefined;
    if (options.httpAddr !== null) {
      const { host, port } = options.httpAddr;
      try {
        http = HttpServer.start(host, port, {
          notReadyReason: () => notReadyReason(view),
          metrics: () => metrics.registry.render(),
          views: () => views,
        });
      } catch (err) {
        lock.close();
        throw new StartupError(
          `Cannot listen on ${host}:${port} (--http-addr): ${(err as Error).message}`,
        );
      }
    }
    let lagMs = 0;
    let lagCheck = clock.nowMs();
    const lagTimer = timers.setInterval(() => {
      const now = clock.nowMs();
      lagMs = Math.max(0, now - lagCheck - LAG_CHECK_MS);
      lagCheck = now;
    }, LAG_CHECK_MS);
    let fatalSeen = false;
    const halt: { current: (() => Promise<void>) | null } = { current: null };
    // Before start() returns, a failure ends start-up (it throws); after, it halts the node.
    const startupFailed = Promise.withResolvers<never>();
    startupFailed.promise.catch(() => {});
    const fatal = (err: Error): void => {
      if (fatalSeen) return;
      fatalSeen = true;
      log.fatal("Storage failure, the node stops: {error}", { error: err.message });
      if (deps.onFatal) deps.onFatal(err);
      else if (halt.current) void halt.current();
      else startupFailed.reject(err);
    };
    let failureWatch: ReturnType<Timers["setInterval"]> | undefined;
    const clustered = options.voters.size > 1;
    let store: RaftMetadataStore | undefined;
    let replicas: ReplicaManager | undefined;
    let controller: ControllerService | undefined;
    let channel: ControllerChannel | undefined;
    let lifecycle: BrokerLifecycle | undefined;
    let listener: KafkaListener | undefined;
    try {
      try {
        store = await RaftMetadataStore.start({
          nodeId: options.nodeId,
          voters: options.voters,
          raftListenAddr: options.raftListenAddr,
          dataDir: options.dataDir,
          tickMs: RAFT_TICK_MS,
          clock,
          timers,
          fs,
          net,
          random,
        });
        // The metadata store stops on a Raft storage failure (or an entry that does not
        // apply); the node cannot go on without it.
        const st = store;
        failureWatch = timers.setInterval(() => {
          if (st.failure !== undefined) fatal(st.failure);
        }, FAILURE_CHECK_MS);
      } catch (err) {
        if (err instanceof Deno.errors.AddrInUse) {
          throw new StartupError(
            `Cannot listen for Raft on ${options.raftListenAddr}: ${err.message}`,
          );
        }
        throw err;
      }
      if (clustered) {
        try {
          await fs.stat(join(options.dataDir, "metadata", "records.log"));
          throw new StartupError(
            `Data directory ${options.dataDir} holds single-node metadata (format 1); start it once without --peers to migrate it`,
          );
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      } else {
        await migrateJournal(fs, options.dataDir, store);
      }
      controller = new ControllerService({
        nodeId: options.nodeId,
        store,
        clock,
        timers,
        sessionTimeoutMs: options.brokerSessionTimeoutMs,
        leaderImbalanceCheckIntervalMs: options.leaderImbalanceCheckIntervalMs,
        uncleanLeaderElection: options.uncleanLeaderElection,
        clusterIdForNewCluster: meta?.clusterId ?? randomUuid(random),
      });
      const clusterId = await Promise.race([
        waitForClusterId(store, options.dataDir),
        startupFailed.promise,
      ]);
      if (meta && meta.clusterId !== clusterId) {
        throw new StartupError(
          `Data directory ${options.dataDir} is for cluster ${meta.clusterId}, but the metadata quorum says ${clusterId}`,
        );
      }
      if (!meta || meta.formatVersion !== FORMAT_VERSION) {
        await writeMeta(fs, options.dataDir, {
          nodeId: options.nodeId,
          clusterId,
          formatVersion: FORMAT_VERSION,
        });
      }
      channel = new ControllerChannel({
        nodeId: options.nodeId,
        store,
        controller,
        clock,
        timers,
        net,
      });
      const ch = channel;
      let brokerEpoch = () => -1;
      replicas = new ReplicaManager({
        topicsDir: join(options.dataDir, "topics"),
        nodeId: options.nodeId,
        flush: options.flush,
        clock,
        timers,
        fs,
        net,
        replicaLagTimeMaxMs: options.replicaLagTimeMaxMs,
        // Until unfenced, the image may be stale (a cluster) or about to take our
        // leaderships away and give them back in a new epoch (re-registration).
        holdLeadership: true,
        alterIsr: (req) =>
          ch.alterPartition({ brokerId: options.nodeId, brokerEpoch: brokerEpoch(), ...req }),
        onStorageFailure: (err) => fatal(err),
        staticBrokerConfigs: options.staticBrokerConfigs,
        onLogSyncMs: (ms) => metrics.logFsyncTime.observe(ms),
        logCleaner: {
          dedupeBufferBytes: options.logCleanerDedupeBufferBytes,
          ioMaxBytesPerSecond: options.logCleanerIoMaxBytesPerSecond,
          backoffMs: options.logCleanerBackoffMs,
        },
      });
      store.onCommitMs = (ms) => metrics.raftCommitTime.observe(ms);
      deps.observe?.({ store, replicas });
      await replicas.applyImage(store.image);
      const groups = new GroupService(
        new GroupCoordinator({
          ...DEFAULT_GROUP_CONFIG,
          initialRebalanceDelayMs: options.groupInitialRebalanceDelayMs,
          minSessionTimeoutMs: options.groupMinSessionTimeoutMs,
          maxSessionTimeoutMs: options.groupMaxSessionTimeoutMs,
        }, { random: new Random(random.nextU32()) }),
        { replicas, clock, timers },
      );
      groups.syncPartitions();
      const producerIds = new ProducerIdManager(async () => {
        const block = await channel!.allocateProducerIds(options.nodeId, brokerEpoch());
        return block.start;
      });
      const brokers = new BrokerConnections({
        clientId: `tidelog-broker-${options.nodeId}`,
        endpointOf: (id) => store!.image.brokers.get(id)?.endpoints[0],
        net,
        timers,
      });
      const markers = new MarkerChannel({
        nodeId: options.nodeId,
        leaderOf: (topic, partition) => {
          const t = store!.image.topic(topic);
          if (!t || !t.partitions[partition]) return undefined;
          return t.partitions[partition]!.leader;
        },
        writeLocally: (job, partitions) => writeMarkersLocally(services, job, partitions),
        brokers,
      });
      const txn = new TxnService(
        new TxnCoordinator({
          ...DEFAULT_TXN_CONFIG,
          transactionMaxTimeoutMs: options.transactionMaxTimeoutMs,
        }),
        {
          replicas,
          clock,
          timers,
          allocateProducerId: () => producerIds.generateProducerId(),
          writeMarkers: (job, partitions) => markers.write(job, partitions),
          partitionExists: (topic, partition) =>
            store!.image.topic(topic)?.partitions[partition] !== undefined,
        },
      );
      txn.syncPartitions();
      const r = replicas;
      store.onChange(async (prev, next) => {
        await r.applyImage(next);
        groups.syncPartitions();
        txn.syncPartitions();
        const deleted = new Set<string>();
        for (const [id, t] of prev.topicsById) if (!next.topicsById.has(id)) deleted.add(t.name);
        groups.onTopicsDeleted(deleted);
      });

      const advertised = { host: options.advertisedHost, port: options.advertisedPort };
      const lifecycleRef: { current: BrokerLifecycle | undefined } = { current: undefined };
      const services: BrokerServices = {
        config: {
          nodeId: options.nodeId,
          advertisedHost: options.advertisedHost,
          advertisedPort: options.advertisedPort,
          autoCreateTopics: options.autoCreateTopics,
          numPartitions: options.numPartitions,
          defaultReplicationFactor: options.defaultReplicationFactor,
          maxRequestBytes: options.maxRequestBytes,
          offsetsTopicReplicationFactor: Math.min(3, options.voters.size),
          listenAddress: `${options.kafkaHost}:${options.kafkaPort}`,
          logDir: join(options.dataDir, "topics"),
          quorumVoters: [...options.voters].map(([id, addr]) => `${id}@${addr}`).join(","),
          staticBrokerConfigs: options.staticBrokerConfigs,
        },
        metadata: store,
        replicas,
        groups,
        txn,
        producerIds,
        brokers,
        metrics,
        clock,
        timers,
        controllerContext: (): ControllerContext => ({
          defaults: {
            numPartitions: options.numPartitions,
            defaultReplicationFactor: options.defaultReplicationFactor,
          },
          newTopicId: () => randomUuid(random),
        }),
        controller,
        controllerChannel: channel,
        get lifecycle(): BrokerLifecycle {
          return lifecycleRef.current!;
        },
      };
      const broker: Broker = new Broker(services, allHandlers(() => broker.apiVersions()));
      const bind = (): KafkaListener => {
        try {
          return KafkaListener.listen(
            {
              hostname: options.kafkaHost,
              port: options.kafkaPort,
              maxRequestBytes: options.maxRequestBytes,
              net,
              timers,
            },
            broker,
          );
        } catch (err) {
          throw new StartupError(
            `Cannot listen on ${options.kafkaHost}:${options.kafkaPort}: ${(err as Error).message}`,
          );
        }
      };
      // The local image may be stale (a restart after a crash, in a cluster), and a
      // re-registration moves our leaderships to a new epoch: as Kafka's brokers, serve
      // clients only once the controller has unfenced us, which needs our metadata to
      // have caught up with our new registration. Only an ephemeral port must be bound
      // first, to be advertised (in-process tests; they wait for start() to return).
      if (options.advertisedPort === 0) {
        listener = bind();
        if (options.advertisedPort === 0) {
          services.config.advertisedPort = listener.addr.port;
          advertised.port = listener.addr.port;
        }
      }
      lifecycle = new BrokerLifecycle({
        nodeId: options.nodeId,
        clusterId,
        endpoint: advertised,
        store,
        channel,
        heartbeatIntervalMs: options.brokerHeartbeatIntervalMs,
        timers,
        random,
        clock,
      });
      lifecycleRef.current = lifecycle;
      view.lifecycle = lifecycle;
      const lifecycleNow = lifecycle;
      registerNodeGauges(metrics, {
        nodeId: options.nodeId,
        clock,
        store,
        replicas,
        groups,
        lifecycle: () => lifecycleNow,
        eventLoopLagMs: () => lagMs,
      });
      views = new AdminView({
        nodeId: options.nodeId,
        clock,
        store,
        replicas,
        groups,
        metrics,
        staticBrokerConfigs: options.staticBrokerConfigs,
      });
      const lc = lifecycle;
      brokerEpoch = () => lc.brokerEpoch;
      const unfenced = await Promise.race([
        lifecycle.whenUnfenced().then(() => true),
        startupFailed.promise,
        sleep(timers, UNFENCE_WAIT_MS).then(() => false as const),
      ]);
      const startLeading = async () => {
        await r.startLeading();
        groups.syncPartitions();
        txn.syncPartitions();
      };
      if (unfenced) {
        await startLeading();
      } else {
        // Listen (Metadata, and NOT_LEADER_OR_FOLLOWER for anything else) but lead
        // nothing until the controller has unfenced us: our image may be stale.
        log.warn("Still fenced after {seconds} s; listening, leading nothing until unfenced", {
          seconds: UNFENCE_WAIT_MS / 1000,
        });
        lifecycle.whenUnfenced().then(startLeading).catch((err) =>
          log.error("Cannot take up leaderships: {error}", { error: err })
        );
      }
      listener ??= bind();
      log.info(
        "Node {nodeId} of cluster {clusterId} serving Kafka on {addr} (advertised {advertised}), Raft on {raft}, data in {dir}",
        {
          nodeId: options.nodeId,
          clusterId,
          addr: `${listener.addr.hostname}:${listener.addr.port}`,
          advertised: `${advertised.host}:${advertised.port}`,
          raft: `${store.raftAddr.hostname}:${store.raftAddr.port}`,
          dir: options.dataDir,
        },
      );
      const crc = crc32cImplementation();
      if (!crc.native) {
        log.warn(
          "CRC32C runs in TypeScript, about 15x slower on large batches: the native module did not load ({reason})",
          { reason: crc.reason },
        );
      }
      const node = new Node({
        listener,
        store,
        replicas,
        groups,
        txn,
        brokers,
        http,
        view,
        lagTimer,
        controller,
        channel,
        lifecycle,
        lock,
        clustered,
        runtime: rt,
        retentionCheckIntervalMs: options.retentionCheckIntervalMs,
        failureWatch: failureWatch!,
        sessionTimeoutMs: options.brokerSessionTimeoutMs,
      });
      halt.current = () => node.halt();
      return node;
    } catch (err) {
      timers.clearInterval(failureWatch);
      timers.clearInterval(lagTimer);
      await http?.close();
      await listener?.close();
      await lifecycle?.close();
      channel?.close();
      controller?.close();
      await replicas?.close();
      await store?.close();
      lock.close();
      throw err;
    }
  }

  /**
   * The node's parts, for tests that check invariants across a cluster (the whole-cluster
   * simulation); nothing else reaches into a running node.
   */
  get internals(): {
    readonly store: RaftMetadataStore;
    readonly replicas: ReplicaManager;
    readonly lifecycle: BrokerLifecycle;
    readonly groups: GroupService;
  } {
    return {
      store: this.#store,
      replicas: this.#replicas,
      lifecycle: this.#lifecycle,
      groups: this.#groups,
    };
  }

  /** The bound Kafka address. */
  get kafkaAddr(): NetAddr {
    return this.#listener.addr;
  }

  /** The bound Raft address. */
  get raftAddr(): NetAddr {
    return this.#store.raftAddr;
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

  /**
   * If this node is the controller, hands Raft leadership to the most caught-up voter that
   * is a live broker and waits (up to a second) for it to take over.
   */
  async #resignController(): Promise<void> {
    const st = this.#store.status();
    if (st.role !== "leader") return;
    const live = new Set(this.#store.image.liveBrokers());
    const candidates = st.voters.filter((id) => id !== st.id)
      .sort((a, b) =>
        (live.has(b) ? 1 : 0) - (live.has(a) ? 1 : 0) ||
        (st.match[b] ?? 0) - (st.match[a] ?? 0)
      );
    const target = candidates[0];
    if (target === undefined) return;
    this.#store.transferLeadership(target);
    const { clock, timers } = this.#runtime;
    const deadline = clock.nowMs() + 1000;
    while (this.#store.isController() && clock.nowMs() < deadline) await sleep(timers, 10);
    log.info("Controller role {outcome} to node {target}", {
      outcome: this.#store.isController() ? "not handed" : "handed",
      target,
    });
  }

  /**
   * Stops the node at once after a fatal failure: no controlled shutdown (the controller
   * fences it when its connections close), everything closed best-effort. Idempotent, and
   * a no-op once stop() has begun.
   */
  halt(): Promise<void> {
    this.#stopped ??= (async () => {
      const { timers } = this.#runtime;
      timers.clearInterval(this.#retentionTimer);
      timers.clearInterval(this.#failureWatch);
      timers.clearInterval(this.#quorumWatch);
      timers.clearInterval(this.#lagTimer);
      this.#view.stopping = true;
      const steps: (() => unknown)[] = [
        () => this.#http?.close(),
        () => this.#listener.close(),
        () => this.#lifecycle.close(),
        () => this.#channel.close(),
        () => this.#controller.close(),
        () => this.#groups.close(),
        () => this.#txn.close(),
        () => this.#brokers.close(),
        () => this.#replicas.close(),
        () => this.#store.close(),
        () => this.#lock.close(),
      ];
      for (const step of steps) {
        try {
          await step();
        } catch (err) {
          log.warn("While halting: {error}", { error: err });
        }
      }
      log.info("Node halted");
    })();
    return this.#stopped;
  }

  /**
   * Stops the node: in a cluster, first a controlled shutdown (the controller moves this
   * broker's leaderships to other ISR members, bounded by a timeout), then stops
   * accepting, closes connections, flushes and closes every log. Idempotent. Rejects
   * with the storage failure if the last flush of a log or of the Raft store fails
   * (everything is closed anyway).
   */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      const { clock, timers } = this.#runtime;
      timers.clearInterval(this.#retentionTimer);
      timers.clearInterval(this.#failureWatch);
      timers.clearInterval(this.#lagTimer);
      this.#view.stopping = true;
      if (this.#clustered) {
        const started = clock.nowMs();
        const done = await this.#lifecycle.controlledShutdown(CONTROLLED_SHUTDOWN_TIMEOUT_MS);
        log.info("Controlled shutdown {outcome} in {ms} ms", {
          outcome: done ? "completed" : "timed out",
          ms: clock.nowMs() - started,
        });
      }
      if (this.#clustered) await this.#resignController();
      // Only now: a controlled shutdown cut off from the quorum can last seconds, and a
      // node that has lost the quorum must stop leading then too (the controller has
      // fenced it and named new leaders; sim seed 1395 read records from such a leader
      // that the cluster then lost).
      timers.clearInterval(this.#quorumWatch);
      await this.#lifecycle.close();
      await this.#listener.close();
      await this.#http?.close();
      this.#channel.close();
      this.#controller.close();
      this.#groups.close();
      this.#txn.close();
      this.#brokers.close();
      // The last fsyncs can fail (a failing disk): close the rest anyway, then report it,
      // so that the process exits 1 as for any storage failure (Kafka halts then too).
      let failure: unknown = null;
      for (const close of [() => this.#replicas.close(), () => this.#store.close()]) {
        try {
          await close();
        } catch (err) {
          failure ??= err;
          log.error("Closing the node's storage failed: {error}", { error: err });
        }
      }
      this.#lock.close();
      if (failure !== null) throw failure;
      log.info("Node stopped");
    })();
    return this.#stopped;
  }
}

/**
 * The cluster id from the metadata log: written by the first controller (see
 * ControllerService), so in a cluster this waits for a quorum, logging while it waits.
 */
async function waitForClusterId(store: RaftMetadataStore, dataDir: string): Promise<string> {
  for (let waited = 0;; waited += 5) {
    try {
      const image = await store.waitForImage((i) => i.clusterId !== null, 5000);
      return image.clusterId!;
    } catch (err) {
      if (!(err instanceof DOMException && err.name === "TimeoutError")) throw err;
      log.info("Waiting for the metadata quorum ({seconds} s so far; data in {dir})", {
        seconds: waited + 5,
        dir: dataDir,
      });
    }
  }
}
