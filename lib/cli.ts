/**
 * Command-line parsing: `tidelog serve [flags]`. Every flag can also come from an
 * environment variable `TIDELOG_<FLAG>` (dashes as underscores, upper case); a flag on
 * the command line wins. A bad flag is reported in one line and exits with code 2.
 */
import { parseArgs } from "node:util";
import { isAdminNoun } from "./admin/mod.ts";
import {
  ConfigFileError,
  mapServerProperties,
  parseProperties,
  type ServerProperties,
} from "./config_file.ts";
import type { FlushPolicy } from "./log/mod.ts";
import type { LogLevel } from "./util/log.ts";

/** Everything `serve` needs, parsed and checked. */
export interface ServeOptions {
  nodeId: number;
  kafkaHost: string;
  kafkaPort: number;
  advertisedHost: string;
  advertisedPort: number;
  dataDir: string;
  flush: FlushPolicy;
  maxRequestBytes: number;
  autoCreateTopics: boolean;
  numPartitions: number;
  defaultReplicationFactor: number;
  retentionCheckIntervalMs: number;
  /** Kafka `group.initial.rebalance.delay.ms`. */
  groupInitialRebalanceDelayMs: number;
  /** Kafka `group.min.session.timeout.ms`. */
  groupMinSessionTimeoutMs: number;
  /** Kafka `group.max.session.timeout.ms`. */
  groupMaxSessionTimeoutMs: number;
  logLevel: LogLevel;
  /**
   * The Raft voters, node id → "host:port", this node included. Only this node (with
   * an ephemeral port unless --raft-addr says otherwise) when --peers is not given: the
   * one-node embedded default.
   */
  voters: Map<number, string>;
  /** Where the Raft listener binds. */
  raftListenAddr: string;
  /** Kafka `replica.lag.time.max.ms`: an ISR follower not caught up for this long is removed. */
  replicaLagTimeMaxMs: number;
  /** Kafka `broker.session.timeout.ms`: a broker silent this long is fenced. */
  brokerSessionTimeoutMs: number;
  /** Kafka `broker.heartbeat.interval.ms`. */
  brokerHeartbeatIntervalMs: number;
  /** Kafka `leader.imbalance.check.interval.seconds`, in ms; 0 turns preferred-leader election off. */
  leaderImbalanceCheckIntervalMs: number;
  /** Kafka `unclean.leader.election.enable`. */
  uncleanLeaderElection: boolean;
  /** Kafka `log.cleaner.dedupe.buffer.size`: memory of the cleaner's key map. */
  logCleanerDedupeBufferBytes: number;
  /** Kafka `log.cleaner.io.max.bytes.per.second`; 0: no limit. */
  logCleanerIoMaxBytesPerSecond: number;
  /** Kafka `log.cleaner.backoff.ms`. */
  logCleanerBackoffMs: number;
  /** Kafka `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` accepted. */
  transactionMaxTimeoutMs: number;
  /** The HTTP listener (metrics, health, readiness); null: none. */
  httpAddr: { host: string; port: number } | null;
  /**
   * Broker-level defaults of topic configs from `--config` (`log.retention.ms`,
   * `min.insync.replicas`, ...), by broker key; under the dynamic broker configs.
   */
  staticBrokerConfigs: Readonly<Record<string, string>>;
  /** How log lines are written: text (one line, values unquoted) or JSON lines. */
  logFormat: "text" | "json";
  /** Keys of the `--config` file Tidelog does not use (logged once at start). */
  unusedConfigKeys: string[];
}

/** Options of `tidelog status`. */
export interface StatusOptions {
  /** Kafka addresses of the nodes to ask. */
  addrs: { host: string; port: number }[];
}

/** A command line that cannot be run; `message` is the one line to print. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The parsed command. */
export type Command =
  | { kind: "serve"; options: ServeOptions }
  | { kind: "status"; options: StatusOptions }
  /** `tidelog <noun> <verb> ...` (lib/admin parses the rest itself). */
  | { kind: "admin"; args: string[] }
  | { kind: "help" }
  | { kind: "version" };

export const VERSION = "0.1.0";

const FLAGS = {
  "node-id": { type: "string", help: "N", doc: "this node's id (default 1)" },
  "kafka-addr": {
    type: "string",
    help: "HOST:PORT",
    doc: "Kafka listener address (default 127.0.0.1:9092)",
  },
  "http-addr": {
    type: "string",
    help: "HOST:PORT",
    doc: "HTTP listener for /metrics, /health and /ready; none: off (default 127.0.0.1:9644)",
  },
  "advertised-addr": {
    type: "string",
    help: "HOST:PORT",
    doc: "address Metadata gives clients (default: --kafka-addr)",
  },
  "raft-addr": {
    type: "string",
    help: "HOST:PORT",
    doc: "Raft listener address (default: this node's entry in --peers)",
  },
  "peers": {
    type: "string",
    help: "ID@HOST:PORT,...",
    doc: "the Raft voters, this node included (default: this node alone)",
  },
  "data-dir": { type: "string", help: "DIR", doc: "data directory (default ./data/node-<id>)" },
  "flush": {
    type: "string",
    help: "POLICY",
    doc: "always | interval=MS | never (default always: acks wait for fsync)",
  },
  "max-request-bytes": {
    type: "string",
    help: "N",
    doc: "largest request frame accepted (default 104857600)",
  },
  "auto-create-topics": {
    type: "string",
    help: "BOOL",
    doc: "create missing topics on Metadata/Produce (default true)",
  },
  "num-partitions": {
    type: "string",
    help: "N",
    doc: "partitions of auto-created topics (default 1)",
  },
  "default-replication-factor": {
    type: "string",
    help: "N",
    doc: "replication factor of auto-created topics, capped at the live brokers (default 3)",
  },
  "retention-check-interval-ms": {
    type: "string",
    help: "MS",
    doc: "how often retention runs (default 300000)",
  },
  "group-initial-rebalance-delay-ms": {
    type: "string",
    help: "MS",
    doc: "wait for more members before a new group's first rebalance (default 3000)",
  },
  "group-min-session-timeout-ms": {
    type: "string",
    help: "MS",
    doc: "smallest consumer session timeout accepted (default 6000)",
  },
  "group-max-session-timeout-ms": {
    type: "string",
    help: "MS",
    doc: "largest consumer session timeout accepted (default 1800000)",
  },
  "replica-lag-time-max-ms": {
    type: "string",
    help: "MS",
    doc: "an ISR follower not caught up for this long leaves the ISR (default 5000)",
  },
  "broker-session-timeout-ms": {
    type: "string",
    help: "MS",
    doc: "a broker without heartbeats for this long is fenced (default 1500)",
  },
  "broker-heartbeat-interval-ms": {
    type: "string",
    help: "MS",
    doc: "how often a broker heartbeats to the controller (default 250)",
  },
  "leader-imbalance-check-interval-ms": {
    type: "string",
    help: "MS",
    doc: "how often leadership moves back to preferred replicas; 0: never (default 30000)",
  },
  "unclean-leader-election": {
    type: "string",
    help: "BOOL",
    doc: "elect an out-of-sync replica when no ISR member is alive; may lose data (default false)",
  },
  "log-cleaner-dedupe-buffer-bytes": {
    type: "string",
    help: "N",
    doc: "memory of the log cleaner's key map (default 134217728)",
  },
  "log-cleaner-io-max-bytes-per-second": {
    type: "string",
    help: "N",
    doc: "bytes the log cleaner reads and writes per second at most; 0: no limit (default 0)",
  },
  "log-cleaner-backoff-ms": {
    type: "string",
    help: "MS",
    doc: "how long the log cleaner waits when no log needs cleaning (default 15000)",
  },
  "transaction-max-timeout-ms": {
    type: "string",
    help: "MS",
    doc: "the longest transaction.timeout.ms a transactional producer may ask for (default 900000)",
  },
  "config": {
    type: "string",
    help: "FILE",
    doc: "a Kafka server.properties to read flags from (flags and TIDELOG_* win over it)",
  },
  "log-format": {
    type: "string",
    help: "FORMAT",
    doc: "text (one line each, values unquoted) | json (JSON lines) (default text)",
  },
  "log-level": {
    type: "string",
    help: "LEVEL",
    doc: "debug | info | warning | error (default info)",
  },
} as const;

/** The usage text for --help. */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]) =>
    `  --${`${name} ${f.help}`.padEnd(36)} ${f.doc}`
  );
  return [
    "Tidelog: a Kafka-compatible streaming broker",
    "",
    "Usage: tidelog serve [flags]",
    "       tidelog status [--addrs HOST:PORT,...]   each node's role, term, leader and liveness",
    "       tidelog --help | --version",
    "",
    "Flags (each also from the environment as TIDELOG_<FLAG>, e.g. TIDELOG_NODE_ID):",
    ...lines,
  ].join("\n");
}

function envName(flag: string): string {
  return `TIDELOG_${flag.replaceAll("-", "_").toUpperCase()}`;
}

function parseInteger(
  flag: string,
  raw: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new UsageError(`--${flag}: expected an integer, got "${raw}"`);
  }
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${flag}: ${n} is out of range (${min}..${max})`);
  return n;
}

function parseAddr(flag: string, raw: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(raw.trim());
  if (!m) throw new UsageError(`--${flag}: expected HOST:PORT, got "${raw}"`);
  const host = m[1] ?? m[2]!;
  if (host === "") throw new UsageError(`--${flag}: missing host in "${raw}"`);
  return { host, port: parseInteger(flag, m[3]!, 0, 65535) };
}

/** Parses `id@host:port,...` (ids unique, ≥ 0). */
function parsePeers(raw: string): Map<number, string> {
  const voters = new Map<number, string>();
  for (const part of raw.split(",")) {
    const m = /^\s*(\d+)@(.+)$/.exec(part);
    if (!m) throw new UsageError(`--peers: expected ID@HOST:PORT, got "${part}"`);
    const id = parseInteger("peers", m[1]!, 0, 2 ** 31 - 1);
    const addr = parseAddr("peers", m[2]!);
    if (addr.port === 0) throw new UsageError(`--peers: node ${id} needs a fixed port`);
    if (voters.has(id)) throw new UsageError(`--peers: node ${id} is listed twice`);
    voters.set(id, `${addr.host}:${addr.port}`);
  }
  return voters;
}

function parseLogFormat(raw: string): "text" | "json" {
  if (raw !== "text" && raw !== "json") {
    throw new UsageError(`--log-format: expected text or json, got "${raw}"`);
  }
  return raw;
}

function parseBool(flag: string, raw: string): boolean {
  if (raw === "true") return true;
  if (raw === "false") return false;
  throw new UsageError(`--${flag}: expected true or false, got "${raw}"`);
}

function parseFlush(raw: string): FlushPolicy {
  if (raw === "always") return { kind: "always" };
  if (raw === "never") return { kind: "never" };
  const m = /^interval=(\d+)$/.exec(raw);
  if (m) return { kind: "interval", ms: parseInteger("flush", m[1]!, 1) };
  throw new UsageError(`--flush: expected always, interval=MS or never, got "${raw}"`);
}

const LEVELS: readonly LogLevel[] = ["debug", "info", "warning", "error"];

/**
 * Parses `args` (without the program name) with `env` as fallback. Throws
 * {@linkcode UsageError} for anything wrong.
 */
export function parseCommandLine(
  args: string[],
  env: (name: string) => string | undefined,
  /** Reads `--config`'s file (main.ts passes the real file system). */
  readTextFile: (path: string) => string = (path) => {
    throw new Error(`no file system to read ${path} from`);
  },
): Command {
  if (args[0] === "help") return { kind: "help" };
  if (args[0] !== undefined && isAdminNoun(args[0])) return { kind: "admin", args };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: "string" as const }])),
        addrs: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message.split("\n")[0]!);
  }
  if (parsed.values.help) return { kind: "help" };
  if (parsed.values.version) return { kind: "version" };
  const [command, ...rest] = parsed.positionals;
  if (command !== "serve" && command !== "status") {
    throw new UsageError(
      command === undefined
        ? 'missing command: expected "serve" or "status"'
        : `unknown command "${command}"`,
    );
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (command === "status") {
    const other = Object.keys(FLAGS).find((f) => values[f] !== undefined);
    if (other) throw new UsageError(`--${other} is a flag of "serve", not "status"`);
    const raw = typeof values.addrs === "string"
      ? values.addrs
      : env("TIDELOG_ADDRS") ?? "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094";
    return {
      kind: "status",
      options: { addrs: raw.split(",").map((a) => parseAddr("addrs", a)) },
    };
  }
  if (values.addrs !== undefined) throw new UsageError('--addrs is a flag of "status"');
  const configPath = typeof values.config === "string" ? values.config : env("TIDELOG_CONFIG");
  let file: ServerProperties | null = null;
  if (configPath !== undefined) {
    let text: string;
    try {
      text = readTextFile(configPath);
    } catch (err) {
      throw new UsageError(`--config: cannot read ${configPath}: ${(err as Error).message}`);
    }
    try {
      file = mapServerProperties(parseProperties(text));
    } catch (err) {
      if (!(err instanceof ConfigFileError)) throw err;
      throw new UsageError(`${configPath}: ${err.message}`);
    }
  }
  // Flags win over TIDELOG_* variables, which win over the file.
  const fromFile = (flag: string) =>
    values[flag] === undefined && env(envName(flag)) === undefined &&
    file?.flags.has(flag) === true;
  const get = (flag: keyof typeof FLAGS): string | undefined => {
    const v = values[flag];
    return typeof v === "string" ? v : env(envName(flag)) ?? file?.flags.get(flag);
  };
  const build = (): Command => {
    /** An integer flag's value (or its default) within [min, max]. */
    const int = (flag: keyof typeof FLAGS, fallback: string, min: number, max?: number) =>
      parseInteger(flag, get(flag) ?? fallback, min, max);
    const nodeId = parseInteger("node-id", get("node-id") ?? "1", 0, 2 ** 31 - 1);
    const kafka = parseAddr("kafka-addr", get("kafka-addr") ?? "127.0.0.1:9092");
    const advertisedRaw = get("advertised-addr");
    const advertised = advertisedRaw ? parseAddr("advertised-addr", advertisedRaw) : kafka;
    if (advertised.host === "0.0.0.0" || advertised.host === "::") {
      throw new UsageError(
        `--advertised-addr: clients cannot connect to ${advertised.host}; give a reachable host`,
      );
    }
    const peersRaw = get("peers");
    const voters = peersRaw === undefined ? new Map<number, string>() : parsePeers(peersRaw);
    if (peersRaw !== undefined && !voters.has(nodeId)) {
      throw new UsageError(
        `--peers: node ${nodeId} is not among the voters; every node must be a Raft voter`,
      );
    }
    const raftRaw = get("raft-addr");
    const raft = raftRaw !== undefined
      ? parseAddr("raft-addr", raftRaw)
      : voters.has(nodeId)
      ? parseAddr("peers", voters.get(nodeId)!)
      : { host: "127.0.0.1", port: 0 };
    const raftListenAddr = `${raft.host}:${raft.port}`;
    if (!voters.has(nodeId)) voters.set(nodeId, raftListenAddr);
    if (raft.port === kafka.port && kafka.port !== 0 && raft.host === kafka.host) {
      throw new UsageError(`--raft-addr: ${raftListenAddr} is also the Kafka address`);
    }
    const httpRaw = get("http-addr") ?? "127.0.0.1:9644";
    const httpAddr = httpRaw.trim() === "none" ? null : parseAddr("http-addr", httpRaw);
    if (
      httpAddr !== null && httpAddr.port !== 0 &&
      [kafka, raft].some((a) => a.port === httpAddr.port && a.host === httpAddr.host)
    ) {
      throw new UsageError(`--http-addr: ${httpRaw} is also the Kafka or Raft address`);
    }
    const logLevel = get("log-level") ?? "info";
    if (!LEVELS.includes(logLevel as LogLevel)) {
      throw new UsageError(`--log-level: expected one of ${LEVELS.join(", ")}, got "${logLevel}"`);
    }
    return {
      kind: "serve",
      options: {
        nodeId,
        kafkaHost: kafka.host,
        kafkaPort: kafka.port,
        advertisedHost: advertised.host,
        advertisedPort: advertised.port,
        dataDir: get("data-dir") ?? `./data/node-${nodeId}`,
        flush: parseFlush(get("flush") ?? "always"),
        maxRequestBytes: int("max-request-bytes", "104857600", 1024, 2 ** 31 - 1),
        autoCreateTopics: parseBool("auto-create-topics", get("auto-create-topics") ?? "true"),
        numPartitions: parseInteger("num-partitions", get("num-partitions") ?? "1", 1, 100_000),
        defaultReplicationFactor: int("default-replication-factor", "3", 1, 32767),
        retentionCheckIntervalMs: int("retention-check-interval-ms", "300000", 1),
        groupInitialRebalanceDelayMs: int("group-initial-rebalance-delay-ms", "3000", 0),
        groupMinSessionTimeoutMs: int("group-min-session-timeout-ms", "6000", 1),
        groupMaxSessionTimeoutMs: int("group-max-session-timeout-ms", "1800000", 1),
        logLevel: logLevel as LogLevel,
        voters,
        raftListenAddr,
        replicaLagTimeMaxMs: int("replica-lag-time-max-ms", "5000", 1),
        brokerSessionTimeoutMs: int("broker-session-timeout-ms", "1500", 1),
        brokerHeartbeatIntervalMs: int("broker-heartbeat-interval-ms", "250", 1),
        leaderImbalanceCheckIntervalMs: int("leader-imbalance-check-interval-ms", "30000", 0),
        uncleanLeaderElection: parseBool(
          "unclean-leader-election",
          get("unclean-leader-election") ?? "false",
        ),
        logCleanerDedupeBufferBytes: int(
          "log-cleaner-dedupe-buffer-bytes",
          String(128 * 1024 * 1024),
          1024,
        ),
        logCleanerIoMaxBytesPerSecond: int("log-cleaner-io-max-bytes-per-second", "0", 0),
        logCleanerBackoffMs: int("log-cleaner-backoff-ms", "15000", 1),
        transactionMaxTimeoutMs: int("transaction-max-timeout-ms", "900000", 1),
        httpAddr,
        staticBrokerConfigs: file?.brokerDefaults ?? {},
        unusedConfigKeys: file?.unused ?? [],
        logFormat: parseLogFormat(get("log-format") ?? "text"),
      },
    };
  };
  try {
    return build();
  } catch (err) {
    // A bad value from the file names the file and its key, not the flag it maps to.
    const m = err instanceof UsageError ? /^--([a-z-]+): (.*)$/.exec(err.message) : null;
    if (m !== null && file !== null && fromFile(m[1]!)) {
      const key = file.keyOf.get(m[1]!)!;
      throw new UsageError(`${configPath}: ${key}: ${m[2]}`);
    }
    throw err;
  }
}
