/**
 * A whole Tidelog cluster in one deterministic simulation: N real {@linkcode Node}s (the
 * real Raft, controller, replication, logs, groups and Kafka handlers), each a simulated
 * process on its own simulated machine with an in-memory disk, joined by a simulated
 * network; clients on machines of their own; a fault schedule drawn from the seed; and
 * checkers that run after every event and at the end. One seed replays a run exactly.
 *
 * The life of a run ({@linkcode runSeed}): boot the nodes and create the topic; start the
 * producers and readers; play the fault schedule for `faultMs` of virtual time, checking
 * the per-event invariants; heal everything (cuts, disks, paused and dead processes) and
 * require the cluster to serve every partition again within `livenessMs` (every node
 * unfenced, a new acknowledgement on every partition); stop the clients; and check the
 * data (see `checkers.ts`).
 */
import { configure, type LogRecord, reset } from "@logtape/logtape";
import type { ServeOptions } from "../../../lib/cli.ts";
import { Node, type NodeParts } from "../../../lib/node.ts";
import { ApiKey, ErrorCode } from "../../../lib/protocol/mod.ts";
import type { Runtime } from "../../../lib/runtime/mod.ts";
import { Random } from "../../../lib/util/random.ts";
import { Scheduler, SimProcess } from "../_runtime/scheduler.ts";
import { SimDisk } from "../_runtime/sim_disk.ts";
import { type SimHost, SimNetwork } from "../_runtime/sim_net.ts";
import {
  type ClientEnv,
  CommitHistory,
  History,
  Router,
  runCommitter,
  runProducer,
  runReader,
} from "./clients.ts";

export const TOPIC = "sim";
export const KAFKA_PORT = 9092;
export const RAFT_PORT = 9192;

/** The kinds of fault the schedule may inject. */
export type FaultKind =
  | "kill"
  | "powerLoss"
  | "pause"
  | "isolate"
  | "isolateFromPeers"
  | "cutRaft"
  | "oneWay"
  | "flap"
  | "slowDisk"
  | "failingDisk"
  | "shutdown"
  | "lossyLinks";

export const ALL_FAULTS: readonly FaultKind[] = [
  "kill",
  "powerLoss",
  "pause",
  "isolate",
  "isolateFromPeers",
  "cutRaft",
  "oneWay",
  "flap",
  "slowDisk",
  "failingDisk",
  "shutdown",
  "lossyLinks",
];

/** Everything a run depends on, drawn from its seed ("swarm" testing). */
export interface SimConfig {
  seed: number;
  nodes: number;
  partitions: number;
  minInsync: number;
  /** Virtual time the fault schedule runs. */
  faultMs: number;
  /** After healing, the cluster must serve every partition again within this. */
  livenessMs: number;
  faults: FaultKind[];
  /** Mean pause between faults. */
  faultGapMs: number;
  /** Producers per partition (kinds). */
  producers: { acks: -1 | 1; idempotent: boolean }[];
  /** Pause between a producer's acknowledged values. */
  produceIntervalMs: number;
  replicaLagTimeMaxMs: number;
  leaderImbalanceCheckIntervalMs: number;
  /** Kafka `unclean.leader.election.enable` (may lose acknowledged data by design). */
  uncleanLeaderElection: boolean;
  /**
   * Small segments and a retention size (bytes), with retention running every 500 ms,
   * so that segments are deleted while replicas lag; null: no retention.
   */
  retention: { segmentBytes: number; retentionBytes: number } | null;
  /** Consumer groups committing offsets ("simple" commits), 0 for none. */
  committers: number;
  /** One-way link latency range. */
  latencyMs: [number, number];
  fsyncMs: [number, number];
}

/** Draws the configuration of `seed`. */
export function swarmConfig(seed: number, overrides: Partial<SimConfig> = {}): SimConfig {
  const r = new Random(seed ^ 0x51ca7e);
  const faults = ALL_FAULTS.filter(() => r.chance(0.5));
  if (faults.length === 0) faults.push(r.pick(ALL_FAULTS));
  const kinds: { acks: -1 | 1; idempotent: boolean }[] = [
    { acks: -1, idempotent: false },
    { acks: -1, idempotent: true },
    { acks: 1, idempotent: false },
  ];
  return {
    seed,
    nodes: 3,
    partitions: r.int(1, 3),
    minInsync: r.chance(0.8) ? 2 : 1,
    faultMs: r.int(8_000, 20_000),
    livenessMs: 20_000,
    faults,
    faultGapMs: r.pick([500, 1500, 3000]),
    producers: kinds.filter(() => r.chance(0.7)).concat([kinds[r.int(0, 1)]!]),
    produceIntervalMs: r.pick([10, 25, 50]),
    replicaLagTimeMaxMs: r.pick([1000, 2000, 5000]),
    leaderImbalanceCheckIntervalMs: r.pick([0, 1500, 5000]),
    latencyMs: r.pick([[0.05, 0.2], [0.1, 2], [1, 10]] as [number, number][]),
    fsyncMs: r.pick([[0.1, 0.5], [0.5, 5], [2, 20]] as [number, number][]),
    // New draws go last, so that existing seeds keep their earlier choices.
    uncleanLeaderElection: r.chance(0.1),
    retention: r.chance(0.2) ? { segmentBytes: 2048, retentionBytes: r.pick([4096, 16384]) } : null,
    committers: r.pick([0, 0, 1, 2]),
    ...overrides,
  };
}

/**
 * The test suite's profile of a seed: its swarm config with the fault phase cut from
 * 8-20 s to 3-6 s (each seed keeps its other draws), about half the cost of a full run,
 * so that CI covers thousands of seeds. Full runs: CLUSTER_SIM_PROFILE=full.
 */
export function quickOverrides(seed: number): Partial<SimConfig> {
  const { faultMs } = swarmConfig(seed);
  return { faultMs: 3_000 + Math.round((faultMs - 8_000) / 4) };
}

/** One line of the run's trace. */
export interface TraceLine {
  readonly at: number;
  readonly who: string;
  readonly text: string;
}

/** A simulated machine running (or not) one Tidelog node. */
export interface Machine {
  readonly id: number;
  readonly host: SimHost;
  readonly disk: SimDisk;
  proc: SimProcess | null;
  /** The node's store and partitions, from the moment they exist (also while starting). */
  parts: NodeParts | null;
  /** The node, once started. */
  node: Node | null;
  incarnation: number;
  /** Why it is not running, if it is not. */
  down: "killed" | "powerLoss" | "shutdown" | null;
}

/**
 * A fault that may legitimately cost a broker its session: which machines it touched
 * ("all": every link), from when, and until when (Infinity while it lasts).
 */
export interface Disturbance {
  readonly what: string;
  readonly nodes: ReadonlySet<number> | "all";
  readonly from: number;
  to: number;
}

/** A broken invariant; the message says which and where. */
export class SimViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SimViolation";
  }
}

/** The simulated cluster of one run. */
export class ClusterSim {
  readonly config: SimConfig;
  readonly scheduler = new Scheduler();
  readonly random: Random;
  readonly net: SimNetwork;
  readonly machines: Machine[] = [];
  readonly history = new History();
  readonly commits = new CommitHistory();
  readonly trace: TraceLine[] = [];
  /** Faults that excuse a fencing (see StepChecker's spurious-fencing check). */
  readonly disturbances: Disturbance[] = [];
  /** How many trace lines to keep (the newest). */
  traceKeep = 600;
  #clientsStopped = false;
  #clientHost: SimHost;
  #clientProcs: SimProcess[] = [];
  /** Set by the heal: from then on a node that exits is restarted (see #superviseRestart). */
  #healed = false;
  #fsyncSlow = new Map<number, [number, number]>();
  /** Disturbances of machines that are down, ended when they start again. */
  readonly #downs = new Map<number, Disturbance[]>();
  #fsyncFailRate = new Map<number, number>();
  #lossRate = 0;
  /** Link latency per directed pair, drawn once. */
  readonly #latency = new Map<string, number>();

  constructor(config: SimConfig) {
    this.config = config;
    this.random = new Random(config.seed);
    this.net = new SimNetwork(this.scheduler, new Random(this.random.nextU32()));
    const [lo, hi] = config.latencyMs;
    this.net.faults = {
      latencyMs: (from, to) => {
        const key = `${from}>${to}`;
        let base = this.#latency.get(key);
        if (base === undefined) {
          base = lo + this.random.float() * (hi - lo);
          this.#latency.set(key, base);
        }
        return base * (0.8 + 0.4 * this.random.float());
      },
      lossRate: () => this.#lossRate,
    };
    for (let id = 1; id <= config.nodes; id++) {
      const disk = new SimDisk(`n${id}`);
      disk.faults = {
        fsyncLatencyMs: () => {
          const [a, b] = this.#fsyncSlow.get(id) ?? config.fsyncMs;
          return a + this.random.float() * (b - a);
        },
        fsyncFails: () => this.random.chance(this.#fsyncFailRate.get(id) ?? 0),
      };
      this.machines.push({
        id,
        host: this.net.addHost(`n${id}`),
        disk,
        proc: null,
        parts: null,
        node: null,
        incarnation: 0,
        down: null,
      });
    }
    this.#clientHost = this.net.addHost("clients");
  }

  get now(): number {
    return this.scheduler.now;
  }

  /** Records a fault touching `nodes` from now; `end()` it when it is over. */
  disturb(what: string, nodes: readonly number[] | "all"): Disturbance {
    const d: Disturbance = {
      what,
      nodes: nodes === "all" ? "all" : new Set(nodes),
      from: this.now,
      to: Infinity,
    };
    this.disturbances.push(d);
    return d;
  }

  /** Ends a disturbance (plus `graceMs`: a restarted node needs time to register). */
  undisturb(d: Disturbance, graceMs = 0): void {
    if (d.to === Infinity) d.to = this.now + graceMs;
  }

  /** The disturbances touching any of `nodes` at some time in [from, to]. */
  disturbancesOf(nodes: readonly number[], from: number, to: number): Disturbance[] {
    return this.disturbances.filter((d) =>
      d.from <= to && d.to >= from &&
      (d.nodes === "all" || nodes.some((n) => (d.nodes as ReadonlySet<number>).has(n)))
    );
  }

  /** Adds a line to the trace (a fault, a check, a client event). */
  note(who: string, text: string): void {
    this.trace.push({ at: this.now, who, text });
    if (this.trace.length > this.traceKeep * 2) {
      this.trace.splice(0, this.trace.length - this.traceKeep);
    }
  }

  /** Routes the nodes' log lines into the trace, tagged with the process that logged. */
  async captureLogs(level: "debug" | "info" = "info"): Promise<void> {
    await reset();
    await configure({
      sinks: {
        sim: (record: LogRecord) => {
          const who = this.scheduler.current?.name ?? "sim";
          let msg = "";
          for (let i = 0; i < record.message.length; i++) {
            const part = record.message[i];
            msg += i % 2 === 0
              ? String(part)
              : typeof part === "string"
              ? part
              : part instanceof Error
              ? `${part.name}: ${part.message}`
              : JSON.stringify(part);
          }
          this.note(
            who,
            `${record.level.slice(0, 4).toUpperCase()} ${
              record.category.slice(1).join(".")
            }: ${msg}`,
          );
        },
      },
      loggers: [
        { category: ["tidelog"], lowestLevel: level, sinks: ["sim"] },
        { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["sim"] },
      ],
    });
  }

  /** The last lines of the trace, formatted. */
  formatTrace(lines = 250): string {
    return this.trace.slice(-lines).map((l) =>
      `${(l.at / 1000).toFixed(4).padStart(10)} ${l.who.padEnd(8)} ${l.text}`
    ).join("\n");
  }

  // ---- nodes ------------------------------------------------------------------------

  #options(m: Machine): ServeOptions {
    const voters = new Map(this.machines.map((x) => [x.id, `n${x.id}:${RAFT_PORT}`]));
    return {
      nodeId: m.id,
      kafkaHost: `n${m.id}`,
      kafkaPort: KAFKA_PORT,
      advertisedHost: `n${m.id}`,
      advertisedPort: KAFKA_PORT,
      dataDir: "/data",
      flush: { kind: "always" },
      maxRequestBytes: 1024 * 1024,
      autoCreateTopics: false,
      numPartitions: 1,
      defaultReplicationFactor: 3,
      retentionCheckIntervalMs: this.config.retention ? 500 : 3_600_000,
      groupInitialRebalanceDelayMs: 0,
      groupMinSessionTimeoutMs: 1000,
      groupMaxSessionTimeoutMs: 1_800_000,
      logLevel: "info",
      voters,
      raftListenAddr: `n${m.id}:${RAFT_PORT}`,
      replicaLagTimeMaxMs: this.config.replicaLagTimeMaxMs,
      brokerSessionTimeoutMs: 1500,
      brokerHeartbeatIntervalMs: 250,
      leaderImbalanceCheckIntervalMs: this.config.leaderImbalanceCheckIntervalMs,
      uncleanLeaderElection: this.config.uncleanLeaderElection,
      logCleanerDedupeBufferBytes: 4 * 1024 * 1024,
      logCleanerIoMaxBytesPerSecond: 0,
      logCleanerBackoffMs: 15_000,
      transactionMaxTimeoutMs: 900_000,
      httpAddr: null,
      staticBrokerConfigs: {},
      logFormat: "text",
      unusedConfigKeys: [],
    };
  }

  /** Starts (or restarts) the node of machine `m` as a new process. */
  start(m: Machine): void {
    // A node that was down may be fenced until it has registered again and caught up.
    for (const d of this.#downs.get(m.id) ?? []) this.undisturb(d, 10_000);
    this.#downs.delete(m.id);
    m.incarnation++;
    m.down = null;
    m.host.powerOn();
    const proc = new SimProcess(this.scheduler, `n${m.id}`);
    m.proc = proc;
    m.node = null;
    m.parts = null;
    const runtime: Runtime = {
      clock: proc.clock,
      timers: proc.timers,
      fs: m.disk.fsFor(proc),
      net: m.host.netFor(proc),
      random: new Random(this.random.nextU32()),
    };
    this.note("sim", `start n${m.id} (incarnation ${m.incarnation})`);
    proc.schedule(0, () => {
      Node.start(this.#options(m), {
        runtime,
        observe: (parts) => {
          if (m.proc === proc) m.parts = parts;
        },
        // The real process exits (main.ts); so does this one.
        onFatal: (err) => {
          if (m.proc !== proc) return;
          this.note(`n${m.id}`, `exits: ${err.message}`);
          this.#down(m, "exit on a storage failure");
          proc.kill();
          m.proc = null;
          m.node = null;
          m.parts = null;
          m.down = "killed";
          this.#superviseRestart(m);
        },
      }).then(
        (node) => {
          if (m.proc === proc) m.node = node;
        },
        (err) => {
          this.note(`n${m.id}`, `start failed: ${(err as Error).stack ?? err}`);
          if (m.proc === proc) {
            this.#down(m, "start failed");
            // A node that cannot start exits, as the real process would; the liveness
            // phase restarts it.
            proc.kill();
            m.proc = null;
            m.parts = null;
            m.down = "killed";
            this.#superviseRestart(m);
          }
        },
      );
    });
  }

  /**
   * After the heal, a node that exits (a storage failure of an fsync issued before the
   * heal, a failed start) is restarted a second later, as a supervisor (systemd) would.
   */
  #superviseRestart(m: Machine): void {
    if (!this.#healed) return;
    this.scheduler.schedule(null, 1000, () => {
      if (m.proc === null && m.down === "killed") this.start(m);
    });
  }

  #down(m: Machine, what: string): void {
    const list = this.#downs.get(m.id) ?? [];
    list.push(this.disturb(what, [m.id]));
    this.#downs.set(m.id, list);
  }

  /** kill -9 (`power`: the machine loses power, and its disk what was not durable). */
  crash(m: Machine, power: boolean): void {
    if (m.proc === null) return;
    this.#down(m, power ? "power loss" : "kill -9");
    this.note("sim", `${power ? "power loss of" : "kill -9"} n${m.id}`);
    if (power) m.host.powerOff();
    m.proc.kill();
    if (power) m.disk.powerLoss(new Random(this.random.nextU32()));
    m.proc = null;
    m.node = null;
    m.parts = null;
    m.down = power ? "powerLoss" : "killed";
  }

  /** SIGTERM: a controlled shutdown, then the process exits. */
  shutdown(m: Machine): void {
    const proc = m.proc;
    const node = m.node;
    if (proc === null || node === null) return;
    this.note("sim", `SIGTERM n${m.id}`);
    this.#down(m, "SIGTERM");
    m.down = "shutdown";
    proc.schedule(0, () => {
      // A storage failure during the shutdown: the process exits 1 (main.ts), as here.
      node.stop().catch(() => {}).finally(() => {
        proc.kill();
        if (m.proc === proc) {
          m.proc = null;
          m.node = null;
          m.parts = null;
        }
      });
    });
  }

  /** Whether every machine runs a node that has started. */
  allUp(): boolean {
    return this.machines.every((m) => m.node !== null && m.proc?.state === "running");
  }

  // ---- faults -----------------------------------------------------------------------

  setSlowDisk(m: Machine, range: [number, number] | null): void {
    if (range) this.#fsyncSlow.set(m.id, range);
    else this.#fsyncSlow.delete(m.id);
  }

  setFailingDisk(m: Machine, rate: number): void {
    if (rate > 0) this.#fsyncFailRate.set(m.id, rate);
    else this.#fsyncFailRate.delete(m.id);
  }

  setLoss(rate: number): void {
    this.#lossRate = rate;
  }

  /** Heals every fault and restarts or resumes every node. */
  healAll(): void {
    this.note("sim", "heal: cuts, disks, links; resume and restart nodes");
    this.#healed = true;
    this.net.healAll();
    this.#fsyncSlow.clear();
    this.#fsyncFailRate.clear();
    this.#lossRate = 0;
    for (const m of this.machines) {
      if (m.proc?.state === "paused") m.proc.resume();
      if (m.proc === null && m.down !== "shutdown") this.start(m);
    }
  }

  // ---- clients ----------------------------------------------------------------------

  /** A client process on the client machine. */
  clientEnv(name: string): ClientEnv {
    const proc = new SimProcess(this.scheduler, name);
    this.#clientProcs.push(proc);
    return {
      proc,
      net: this.#clientHost.netFor(proc),
      timers: proc.timers,
      random: new Random(this.random.nextU32()),
      bootstrap: this.machines.map((m) => ({ host: `n${m.id}`, port: KAFKA_PORT })),
      topic: TOPIC,
      now: () => this.now,
      stopped: () => this.#clientsStopped,
    };
  }

  /** Runs `body` as a fresh client process until it settles (or `timeoutMs` passes). */
  async runClient<T>(
    name: string,
    body: (env: ClientEnv) => Promise<T>,
    timeoutMs = 60_000,
  ): Promise<T> {
    const env = this.clientEnv(name);
    let out: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    env.proc.schedule(0, () => {
      body(env).then(
        (value) => (out = { ok: true, value }),
        (error) => (out = { ok: false, error }),
      );
    });
    await this.scheduler.runUntilTrue(() => out !== undefined, timeoutMs);
    env.proc.kill();
    if (out === undefined) throw new SimViolation(`${name} did not finish within ${timeoutMs} ms`);
    if (!out.ok) throw out.error;
    return out.value;
  }

  /** Creates the topic (RF = nodes, min.insync.replicas from the config). */
  /**
   * Creates the topic (RF = nodes, min.insync.replicas from the config); `assignment`
   * gives every partition's replicas (the first is the preferred leader).
   */
  async createTopic(assignment?: readonly number[]): Promise<void> {
    const created = await this.runClient("admin", async (env) => {
      const router = new Router(env);
      for (let attempt = 0; attempt < 200; attempt++) {
        try {
          const res = await router.request(
            1 + (attempt % this.config.nodes),
            ApiKey.CreateTopics,
            4,
            {
              topics: [{
                name: TOPIC,
                numPartitions: assignment ? -1 : this.config.partitions,
                replicationFactor: assignment ? -1 : this.config.nodes,
                assignments: assignment
                  ? Array.from({ length: this.config.partitions }, (_, partitionIndex) => ({
                    partitionIndex,
                    brokerIds: [...assignment],
                  }))
                  : [],
                configs: [
                  { name: "min.insync.replicas", value: String(this.config.minInsync) },
                  ...(this.config.retention
                    ? [
                      { name: "segment.bytes", value: String(this.config.retention.segmentBytes) },
                      {
                        name: "retention.bytes",
                        value: String(this.config.retention.retentionBytes),
                      },
                    ]
                    : []),
                ],
              }],
              timeoutMs: 5000,
              validateOnly: false,
            },
            6000,
          );
          const code = res.topics[0]?.errorCode;
          if (code === ErrorCode.NONE || code === ErrorCode.TOPIC_ALREADY_EXISTS) return true;
        } catch {
          // retry
        }
        await new Promise((r) => env.timers.setTimeout(() => r(undefined), 100));
      }
      return false;
    }, 120_000);
    if (!created) throw new SimViolation("Could not create the topic");
  }

  /** Starts the producers, readers and committers. */
  startClients(): void {
    for (const group of this.groups) {
      const env = this.clientEnv(`c-${group}`);
      const router = new Router(env);
      env.proc.schedule(0, () => {
        runCommitter(env, router, this.history, this.commits, group).catch((err) =>
          this.history.violations.push(`committer ${group} crashed: ${err}`)
        );
      });
    }
    for (let p = 0; p < this.config.partitions; p++) {
      this.config.producers.forEach((kind, k) => {
        const name = `p${p}-${kind.idempotent ? "i" : kind.acks === 1 ? "a1" : "a"}${k}`;
        const env = this.clientEnv(name);
        const router = new Router(env);
        env.proc.schedule(0, () => {
          runProducer(env, router, this.history, {
            partition: p,
            acks: kind.acks,
            idempotent: kind.idempotent,
            name,
            intervalMs: this.config.produceIntervalMs,
          }).catch((err) => this.history.violations.push(`producer ${name} crashed: ${err}`));
        });
      });
      const env = this.clientEnv(`r${p}`);
      const router = new Router(env);
      env.proc.schedule(0, () => {
        runReader(env, router, this.history, p).catch((err) =>
          this.history.violations.push(`reader r${p} crashed: ${err}`)
        );
      });
    }
  }

  /** The consumer groups the committers use. */
  get groups(): string[] {
    return Array.from({ length: this.config.committers }, (_, i) => `g${i}`);
  }

  stopClients(): void {
    this.#clientsStopped = true;
  }

  /** Stops every process and the event loop. */
  close(): void {
    this.#clientsStopped = true;
    for (const m of this.machines) m.proc?.kill();
    for (const p of this.#clientProcs) p.kill();
    this.scheduler.close();
  }
}
