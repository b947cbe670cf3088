/**
 * `tidelog serve --config FILE`: Kafka's `server.properties` keys read as Tidelog's flags.
 * Pure: the caller reads the file. Flags and `TIDELOG_*` variables override what the file
 * says; keys Tidelog has no use for are reported (the node logs them once).
 */
import { BROKER_LOG_CONFIGS, checkBrokerConfigValue } from "./metadata/topic_config.ts";
import { TidelogError } from "./util/errors.ts";

/** A line of the file that cannot be used: names the key (or line) and the reason. */
export class ConfigFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

/**
 * The key/value pairs of a Java properties file: `key=value`, `key: value` or `key value`,
 * `#` and `!` comments, a trailing backslash continuing a line, `\\` escapes. A key given
 * twice keeps its last value, as `java.util.Properties` does.
 */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/^\s+/, "");
    if (line === "" || line.startsWith("#") || line.startsWith("!")) continue;
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + lines[++i]!.replace(/^\s+/, "");
    }
    const m = /^((?:\\.|[^=:\s\\])+)\s*[=:\s]?\s*(.*)$/.exec(line);
    if (m === null) continue;
    out.set(unescape(m[1]!), unescape(m[2]!));
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, c: string) => {
    if (c.length === 5) return String.fromCharCode(parseInt(c.slice(1), 16));
    return c === "t" ? "\t" : c === "n" ? "\n" : c === "r" ? "\r" : c === "f" ? "\f" : c;
  });
}

/** What a `server.properties` file says, in Tidelog's terms. */
export interface ServerProperties {
  /** Flag name (without `--`) → value, as the flag would take it. */
  flags: Map<string, string>;
  /** The flag each value came from: its key in the file (for error messages). */
  keyOf: Map<string, string>;
  /** Broker defaults of topic configs (`log.retention.ms`, `min.insync.replicas`, ...). */
  brokerDefaults: Record<string, string>;
  /** Keys Tidelog does not use, in file order. */
  unused: string[];
}

/** Keys that are the same setting as a flag, value unchanged. */
const SAME_AS_FLAG: Readonly<Record<string, string>> = {
  "node.id": "node-id",
  "broker.id": "node-id",
  "num.partitions": "num-partitions",
  "default.replication.factor": "default-replication-factor",
  "auto.create.topics.enable": "auto-create-topics",
  "controller.quorum.voters": "peers",
  "socket.request.max.bytes": "max-request-bytes",
  "log.retention.check.interval.ms": "retention-check-interval-ms",
  "group.initial.rebalance.delay.ms": "group-initial-rebalance-delay-ms",
  "group.min.session.timeout.ms": "group-min-session-timeout-ms",
  "group.max.session.timeout.ms": "group-max-session-timeout-ms",
  "replica.lag.time.max.ms": "replica-lag-time-max-ms",
  "broker.session.timeout.ms": "broker-session-timeout-ms",
  "broker.heartbeat.interval.ms": "broker-heartbeat-interval-ms",
  "unclean.leader.election.enable": "unclean-leader-election",
  "log.cleaner.dedupe.buffer.size": "log-cleaner-dedupe-buffer-bytes",
  "log.cleaner.io.max.bytes.per.second": "log-cleaner-io-max-bytes-per-second",
  "log.cleaner.backoff.ms": "log-cleaner-backoff-ms",
  "transaction.max.timeout.ms": "transaction-max-timeout-ms",
};

/** A listener list (`NAME://host:port,...`) as name → HOST:PORT (an empty host: all). */
function listeners(key: string, raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of raw.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const m = /^([A-Za-z0-9_]+):\/\/(\[[^\]]*\]|[^:]*):(\d+)$/.exec(part);
    if (m === null) throw new ConfigFileError(`${key}: expected NAME://HOST:PORT, got "${part}"`);
    out.set(m[1]!.toUpperCase(), `${m[2] === "" ? "0.0.0.0" : m[2]}:${m[3]}`);
  }
  return out;
}

/**
 * Maps the file's keys onto flags: `listeners` (the first non-controller listener is the
 * Kafka address, the controller listener the Raft address), `advertised.listeners`,
 * `log.dirs`/`log.dir` (the first directory), `leader.imbalance.check.interval.seconds`,
 * `log.retention.hours`/`minutes`, the keys of {@linkcode SAME_AS_FLAG}, and the broker
 * defaults of topic configs (checked as Kafka checks them).
 *
 * @throws {ConfigFileError} naming the key and the reason
 */
export function mapServerProperties(props: ReadonlyMap<string, string>): ServerProperties {
  const flags = new Map<string, string>();
  const keyOf = new Map<string, string>();
  const brokerDefaults: Record<string, string> = {};
  const unused: string[] = [];
  const set = (flag: string, key: string, value: string) => {
    flags.set(flag, value.trim());
    keyOf.set(flag, key);
  };
  const controllerNames = new Set(
    (props.get("controller.listener.names") ?? "CONTROLLER").split(",").map((s) =>
      s.trim().toUpperCase()
    ),
  );
  for (const [key, value] of props) {
    const flag = SAME_AS_FLAG[key];
    if (flag !== undefined) {
      set(flag, key, value);
    } else if (key === "listeners" || key === "advertised.listeners") {
      const all = [...listeners(key, value)];
      const kafka = all.find(([name]) => !controllerNames.has(name));
      if (kafka !== undefined) {
        set(key === "listeners" ? "kafka-addr" : "advertised-addr", key, kafka[1]);
      }
      const raft = all.find(([name]) => controllerNames.has(name));
      if (key === "listeners" && raft !== undefined) set("raft-addr", key, raft[1]);
    } else if (key === "log.dirs" || key === "log.dir") {
      if (key === "log.dir" && props.has("log.dirs")) continue;
      set("data-dir", key, value.split(",")[0]!.trim());
    } else if (key === "leader.imbalance.check.interval.seconds") {
      const seconds = Number(value.trim());
      if (!Number.isInteger(seconds) || seconds < 0) {
        throw new ConfigFileError(`${key}: expected a whole number of seconds, got "${value}"`);
      }
      set("leader-imbalance-check-interval-ms", key, String(seconds * 1000));
    } else if (key === "log.retention.hours" || key === "log.retention.minutes") {
      if (props.has("log.retention.ms")) continue;
      if (key === "log.retention.hours" && props.has("log.retention.minutes")) continue;
      const n = Number(value.trim());
      if (!Number.isInteger(n)) {
        throw new ConfigFileError(`${key}: expected an integer, got "${value}"`);
      }
      brokerDefaults["log.retention.ms"] = String(
        n < 0 ? -1 : n * (key === "log.retention.hours" ? 3_600_000 : 60_000),
      );
    } else if (BROKER_LOG_CONFIGS.has(key)) {
      try {
        brokerDefaults[key] = checkBrokerConfigValue(key, value);
      } catch (err) {
        if (!(err instanceof TidelogError)) throw err;
        throw new ConfigFileError(`${key}: ${err.message}`);
      }
    } else {
      unused.push(key);
    }
  }
  return { flags, keyOf, brokerDefaults, unused };
}
