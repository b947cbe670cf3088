/**
 * Command-line parsing: `tidelog serve [flags]`. Every flag can also come from an
 * environment variable `TIDELOG_<FLAG>` (dashes as underscores, upper case); a flag on
 * the command line wins. A bad flag is reported in one line and exits with code 2.
 */
import { parseArgs } from "node:util";
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
}

/** A command line that cannot be run; `message` is the one line to print. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The parsed command. */
export type Command = { kind: "serve"; options: ServeOptions } | { kind: "help" } | {
  kind: "version";
};

export const VERSION = "0.1.0";

const FLAGS = {
  "node-id": { type: "string", help: "N", doc: "this node's id (default 1)" },
  "kafka-addr": {
    type: "string",
    help: "HOST:PORT",
    doc: "Kafka listener address (default 127.0.0.1:9092)",
  },
  "advertised-addr": {
    type: "string",
    help: "HOST:PORT",
    doc: "address Metadata gives clients (default: --kafka-addr)",
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
): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: "string" as const }])),
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
  if (command !== "serve") {
    throw new UsageError(
      command === undefined ? 'missing command: expected "serve"' : `unknown command "${command}"`,
    );
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const get = (flag: keyof typeof FLAGS): string | undefined => {
    const v = values[flag];
    return typeof v === "string" ? v : env(envName(flag));
  };
  const nodeId = parseInteger("node-id", get("node-id") ?? "1", 0, 2 ** 31 - 1);
  const kafka = parseAddr("kafka-addr", get("kafka-addr") ?? "127.0.0.1:9092");
  const advertisedRaw = get("advertised-addr");
  const advertised = advertisedRaw ? parseAddr("advertised-addr", advertisedRaw) : kafka;
  if (advertised.host === "0.0.0.0" || advertised.host === "::") {
    throw new UsageError(
      `--advertised-addr: clients cannot connect to ${advertised.host}; give a reachable host`,
    );
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
      maxRequestBytes: parseInteger(
        "max-request-bytes",
        get("max-request-bytes") ?? "104857600",
        1024,
        2 ** 31 - 1,
      ),
      autoCreateTopics: parseBool("auto-create-topics", get("auto-create-topics") ?? "true"),
      numPartitions: parseInteger("num-partitions", get("num-partitions") ?? "1", 1, 100_000),
      defaultReplicationFactor: parseInteger(
        "default-replication-factor",
        get("default-replication-factor") ?? "3",
        1,
        32767,
      ),
      retentionCheckIntervalMs: parseInteger(
        "retention-check-interval-ms",
        get("retention-check-interval-ms") ?? "300000",
        1,
      ),
      groupInitialRebalanceDelayMs: parseInteger(
        "group-initial-rebalance-delay-ms",
        get("group-initial-rebalance-delay-ms") ?? "3000",
        0,
      ),
      groupMinSessionTimeoutMs: parseInteger(
        "group-min-session-timeout-ms",
        get("group-min-session-timeout-ms") ?? "6000",
        1,
      ),
      groupMaxSessionTimeoutMs: parseInteger(
        "group-max-session-timeout-ms",
        get("group-max-session-timeout-ms") ?? "1800000",
        1,
      ),
      logLevel: logLevel as LogLevel,
    },
  };
}
