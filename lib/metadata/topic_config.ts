/**
 * Topic-level configuration: every standard Kafka topic config key with Kafka's default
 * (4.x, KRaft), its dynamic broker-level synonym (`log.retention.ms` for `retention.ms`),
 * and validation with Kafka's error semantics (unknown key or bad value → INVALID_CONFIG).
 * A value resolves as Kafka's does: the topic's override, else this broker's dynamic
 * value of the synonym, else the cluster-wide dynamic default, else the static default.
 *
 * Keys Tidelog does not act on yet (compaction, tiered storage, throttles) are stored and
 * reported like the rest; values that would promise a behaviour it lacks (compaction,
 * broker-side recompression, remote storage) are refused with INVALID_CONFIG.
 */
import { ErrorCode } from "../protocol/error_codes.ts";
import { TidelogError } from "../util/errors.ts";

/** Kafka's ConfigDef types, as DescribeConfigs v3+ reports them. */
export type ConfigType = "boolean" | "string" | "int" | "short" | "long" | "double" | "list";

/** How a config value is parsed and checked. */
export interface ConfigDef {
  readonly type: ConfigType;
  readonly defaultValue: string;
  /** Error text for a bad value, or undefined. */
  readonly validate: (value: string) => string | undefined;
  readonly doc: string;
  /** The broker-level key whose dynamic value is this topic config's default. */
  readonly brokerKey?: string;
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const LONG_MAX = "9223372036854775807";

function integer(min: bigint, lo: bigint, hi: bigint): (v: string) => string | undefined {
  return (v) => {
    if (!/^[+-]?\d+$/.test(v)) return `Not a number of type ${hi === INT64_MAX ? "LONG" : "INT"}`;
    const n = BigInt(v);
    if (n < lo || n > hi) return "is out of range";
    return n < min ? `Value must be at least ${min}` : undefined;
  };
}
const long = (min: number) => integer(BigInt(min), INT64_MIN, INT64_MAX);
const int = (min: number) => integer(BigInt(min), -2147483648n, 2147483647n);

function boolean(v: string): string | undefined {
  return /^(true|false)$/i.test(v) ? undefined : "Expected value to be either true or false";
}

function ratio(v: string): string | undefined {
  const n = Number(v);
  if (v === "" || !Number.isFinite(n)) return "Not a number of type DOUBLE";
  return n < 0 || n > 1 ? "Value must be between 0 and 1" : undefined;
}

function oneOf(allowed: readonly string[], supported = allowed): (v: string) => string | undefined {
  return (v) => {
    if (!allowed.includes(v)) return `String must be one of: ${allowed.join(", ")}`;
    return supported.includes(v) ? undefined : `${v} is not supported by Tidelog yet`;
  };
}

function listOf(allowed: readonly string[], supported: readonly string[]) {
  return (v: string): string | undefined => {
    const items = v.split(",").map((s) => s.trim());
    for (const item of items) {
      if (!allowed.includes(item)) return `Invalid value ${item}: must be one of ${allowed}`;
    }
    const unsupported = items.find((i) => !supported.includes(i));
    return unsupported === undefined
      ? undefined
      : `${unsupported} is not supported by Tidelog yet (log compaction is not implemented)`;
  };
}

/** A throttled-replicas list: empty, `*`, or `partition:broker` pairs. */
function replicaList(v: string): string | undefined {
  if (v.trim() === "" || v.trim() === "*") return undefined;
  return v.split(",").every((s) => /^\s*\d+:\d+\s*$/.test(s))
    ? undefined
    : "must be a list of [partitionId]:[brokerId] or the wildcard '*'";
}

function def(
  type: ConfigType,
  defaultValue: string,
  validate: (v: string) => string | undefined,
  doc: string,
  brokerKey?: string,
): ConfigDef {
  return { type, defaultValue, validate, doc, brokerKey };
}

const CLEANUP_POLICIES = ["compact", "delete"] as const;
const COMPRESSION_TYPES = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/** Every standard Kafka topic config (Kafka 4.1's LogConfig), sorted as Kafka lists them. */
export const TOPIC_CONFIG_DEFS: ReadonlyMap<string, ConfigDef> = new Map<string, ConfigDef>([
  [
    "cleanup.policy",
    def(
      "list",
      "delete",
      listOf(CLEANUP_POLICIES, ["delete", "compact"]),
      "Retention policy of old log segments: delete, compact, or both",
      "log.cleanup.policy",
    ),
  ],
  [
    "compression.gzip.level",
    def("int", "-1", int(-1), "Compression level when compression.type is gzip"),
  ],
  [
    "compression.lz4.level",
    def("int", "9", int(1), "Compression level when compression.type is lz4"),
  ],
  [
    "compression.type",
    def(
      "string",
      "producer",
      oneOf(COMPRESSION_TYPES, ["producer"]),
      "Codec of stored batches: producer keeps the producer's (recompression is not implemented)",
      "compression.type",
    ),
  ],
  [
    "compression.zstd.level",
    def("int", "3", int(-131072), "Compression level when compression.type is zstd"),
  ],
  [
    "delete.retention.ms",
    def(
      "long",
      "86400000",
      long(0),
      "How long tombstones are kept on compacted topics",
      "log.cleaner.delete.retention.ms",
    ),
  ],
  [
    "file.delete.delay.ms",
    def(
      "long",
      "60000",
      long(0),
      "Delay before a deleted segment's files are removed",
      "log.segment.delete.delay.ms",
    ),
  ],
  [
    "flush.messages",
    def(
      "long",
      LONG_MAX,
      long(1),
      "Accepted for compatibility: Tidelog fsyncs before acknowledging (see --flush)",
      "log.flush.interval.messages",
    ),
  ],
  [
    "flush.ms",
    def(
      "long",
      LONG_MAX,
      long(0),
      "Accepted for compatibility: Tidelog fsyncs before acknowledging (see --flush)",
      "log.flush.interval.ms",
    ),
  ],
  [
    "follower.replication.throttled.replicas",
    def(
      "list",
      "",
      replicaList,
      "Replicas whose follower fetches are throttled (throttling is not implemented)",
    ),
  ],
  [
    "index.interval.bytes",
    def("int", "4096", int(0), "Bytes between offset index entries", "log.index.interval.bytes"),
  ],
  [
    "leader.replication.throttled.replicas",
    def(
      "list",
      "",
      replicaList,
      "Replicas whose leader side is throttled (throttling is not implemented)",
    ),
  ],
  [
    "local.retention.bytes",
    def(
      "long",
      "-2",
      long(-2),
      "Local retention with tiered storage (not implemented)",
      "log.local.retention.bytes",
    ),
  ],
  [
    "local.retention.ms",
    def(
      "long",
      "-2",
      long(-2),
      "Local retention with tiered storage (not implemented)",
      "log.local.retention.ms",
    ),
  ],
  [
    "max.compaction.lag.ms",
    def(
      "long",
      LONG_MAX,
      long(1),
      "Longest time a record stays uncompacted",
      "log.cleaner.max.compaction.lag.ms",
    ),
  ],
  [
    "max.message.bytes",
    def("int", "1048588", int(0), "Largest record batch accepted", "message.max.bytes"),
  ],
  [
    "message.timestamp.after.max.ms",
    def(
      "long",
      "3600000",
      long(0),
      "Accepted for compatibility; timestamps are not checked against the broker's clock",
      "log.message.timestamp.after.max.ms",
    ),
  ],
  [
    "message.timestamp.before.max.ms",
    def(
      "long",
      LONG_MAX,
      long(0),
      "Accepted for compatibility; timestamps are not checked against the broker's clock",
      "log.message.timestamp.before.max.ms",
    ),
  ],
  [
    "message.timestamp.type",
    def(
      "string",
      "CreateTime",
      oneOf(["CreateTime", "LogAppendTime"]),
      "Whether record timestamps are the producer's or the broker's append time",
      "log.message.timestamp.type",
    ),
  ],
  [
    "min.cleanable.dirty.ratio",
    def(
      "double",
      "0.5",
      ratio,
      "Dirty ratio above which a compacted log is cleaned",
      "log.cleaner.min.cleanable.ratio",
    ),
  ],
  [
    "min.compaction.lag.ms",
    def(
      "long",
      "0",
      long(0),
      "Shortest time a record stays uncompacted",
      "log.cleaner.min.compaction.lag.ms",
    ),
  ],
  [
    "min.insync.replicas",
    def(
      "int",
      "1",
      int(1),
      "Replicas that must acknowledge an acks=all write",
      "min.insync.replicas",
    ),
  ],
  [
    "preallocate",
    def(
      "boolean",
      "false",
      boolean,
      "Accepted for compatibility; segments are not preallocated",
      "log.preallocate",
    ),
  ],
  ["remote.log.copy.disable", def("boolean", "false", boolean, "Tiered storage (not implemented)")],
  [
    "remote.log.delete.on.disable",
    def("boolean", "false", boolean, "Tiered storage (not implemented)"),
  ],
  [
    "remote.storage.enable",
    def(
      "boolean",
      "false",
      (v) =>
        boolean(v) ??
          (/^true$/i.test(v)
            ? "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
            : undefined),
      "Tiered storage (not implemented)",
    ),
  ],
  [
    "retention.bytes",
    def(
      "long",
      "-1",
      long(-1),
      "Partition size above which old segments are deleted (-1: no limit)",
      "log.retention.bytes",
    ),
  ],
  [
    "retention.ms",
    def(
      "long",
      "604800000",
      long(-1),
      "How long segments are kept before deletion (-1: forever)",
      "log.retention.ms",
    ),
  ],
  [
    "segment.bytes",
    def(
      "int",
      "1073741824",
      int(14),
      "Segment file size at which a new segment is rolled",
      "log.segment.bytes",
    ),
  ],
  [
    "segment.index.bytes",
    def(
      "int",
      "10485760",
      int(4),
      "Accepted for compatibility; index files grow as needed",
      "log.index.size.max.bytes",
    ),
  ],
  [
    "segment.jitter.ms",
    def(
      "long",
      "0",
      long(0),
      "Accepted for compatibility; segments roll without jitter",
      "log.roll.jitter.ms",
    ),
  ],
  [
    "segment.ms",
    def("long", "604800000", long(1), "Age at which the active segment is rolled", "log.roll.ms"),
  ],
  [
    "unclean.leader.election.enable",
    def(
      "boolean",
      "false",
      boolean,
      "Whether a replica outside the ISR may become leader when no ISR member is left (may lose data)",
      "unclean.leader.election.enable",
    ),
  ],
]);

/** Broker-level dynamic configs (Kafka's DynamicLogConfig), by broker key: the topic key. */
export const BROKER_LOG_CONFIGS: ReadonlyMap<string, string> = new Map(
  [...TOPIC_CONFIG_DEFS].filter(([, d]) => d.brokerKey !== undefined).map(([k, d]) => [
    d.brokerKey!,
    k,
  ]),
);

/**
 * Dynamic broker configs in effect for one broker: its own (`kafka-configs --entity-name
 * N`) over the cluster-wide defaults (`--entity-default`), by broker key.
 */
export interface BrokerConfigLayers {
  readonly broker: Readonly<Record<string, string>>;
  readonly cluster: Readonly<Record<string, string>>;
  /** The node's own static defaults (its `--config` file), under the dynamic ones. */
  readonly static?: Readonly<Record<string, string>>;
}

export const NO_BROKER_CONFIGS: BrokerConfigLayers = Object.freeze({ broker: {}, cluster: {} });

/** Where a topic config's effective value comes from (Kafka's ConfigSource names). */
export type TopicConfigSource =
  | "TOPIC_CONFIG"
  | "DYNAMIC_BROKER_CONFIG"
  | "DYNAMIC_DEFAULT_BROKER_CONFIG"
  | "STATIC_BROKER_CONFIG"
  | "DEFAULT_CONFIG";

/** The value of `name` for a topic with overrides `configs`, and its source. */
export function resolveTopicConfig(
  configs: Readonly<Record<string, string>>,
  name: string,
  brokers: BrokerConfigLayers = NO_BROKER_CONFIGS,
): { value: string; source: TopicConfigSource } {
  const explicit = configs[name];
  if (explicit !== undefined) return { value: explicit, source: "TOPIC_CONFIG" };
  const d = TOPIC_CONFIG_DEFS.get(name);
  if (!d) throw new RangeError(`Unknown topic config "${name}"`);
  if (d.brokerKey !== undefined) {
    const own = brokers.broker[d.brokerKey];
    if (own !== undefined) return { value: own, source: "DYNAMIC_BROKER_CONFIG" };
    const cluster = brokers.cluster[d.brokerKey];
    if (cluster !== undefined) return { value: cluster, source: "DYNAMIC_DEFAULT_BROKER_CONFIG" };
    const staticValue = brokers.static?.[d.brokerKey];
    if (staticValue !== undefined) return { value: staticValue, source: "STATIC_BROKER_CONFIG" };
  }
  return { value: d.defaultValue, source: "DEFAULT_CONFIG" };
}

/** The effective value of `name` (see {@linkcode resolveTopicConfig}). */
export function topicConfigValue(
  configs: Readonly<Record<string, string>>,
  name: string,
  brokers: BrokerConfigLayers = NO_BROKER_CONFIGS,
): string {
  return resolveTopicConfig(configs, name, brokers).value;
}

/** A numeric config value (validated on the way in, so parsing cannot fail here). */
export function topicConfigNumber(
  configs: Readonly<Record<string, string>>,
  name: string,
  brokers: BrokerConfigLayers = NO_BROKER_CONFIGS,
): number {
  return Number(topicConfigValue(configs, name, brokers));
}

function invalid(message: string): never {
  throw new TidelogError(ErrorCode.INVALID_CONFIG, message);
}

/** The checked, normalised form of a value for `name` (trimmed; booleans lower-cased). */
export function checkTopicConfigValue(name: string, value: string): string {
  const d = TOPIC_CONFIG_DEFS.get(name);
  if (!d) invalid(`Unknown topic config name: ${name}`);
  const v = d.type === "boolean" ? value.trim().toLowerCase() : value.trim();
  const problem = d.validate(v);
  if (problem) invalid(`Invalid value ${value} for configuration ${name}: ${problem}`);
  return d.type === "list" ? v.split(",").map((s) => s.trim()).join(",") : v;
}

/** Checks a value for a dynamic broker config, by broker key. */
export function checkBrokerConfigValue(name: string, value: string): string {
  const topicKey = BROKER_LOG_CONFIGS.get(name);
  if (topicKey === undefined) {
    invalid(`Cannot update these configs dynamically: Set(${name})`);
  }
  return checkTopicConfigValue(topicKey, value);
}

/**
 * Checks explicit config overrides, throwing INVALID_CONFIG for an unknown key, a
 * duplicate or a bad value, as Kafka's CreateTopics/AlterConfigs do.
 */
export function validateTopicConfigs(
  entries: readonly { name: string; value: string | null }[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { name, value } of entries) {
    if (!TOPIC_CONFIG_DEFS.has(name)) invalid(`Unknown topic config name: ${name}`);
    if (name in out) invalid(`Duplicate config: ${name}`);
    if (value === null) invalid(`Null value not supported for topic configs: ${name}`);
    out[name] = checkTopicConfigValue(name, value);
  }
  return out;
}

const LEGAL_TOPIC_CHARS = /^[a-zA-Z0-9._-]+$/;
const MAX_TOPIC_NAME_LENGTH = 249;

/** Throws INVALID_TOPIC_EXCEPTION unless `name` is a legal Kafka topic name. */
export function validateTopicName(name: string): void {
  let problem: string | undefined;
  if (name.length === 0) problem = "Topic name is illegal, it can't be empty";
  else if (name === "." || name === "..") problem = 'Topic name cannot be "." or ".."';
  else if (name.length > MAX_TOPIC_NAME_LENGTH) {
    problem = `Topic name is illegal, it can't be longer than ${MAX_TOPIC_NAME_LENGTH} characters`;
  } else if (!LEGAL_TOPIC_CHARS.test(name)) {
    problem =
      `Topic name "${name}" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'`;
  }
  if (problem) throw new TidelogError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem);
}

/** Kafka treats '.' and '_' as the same in metric names, so topics may not differ only by them. */
export function topicCollisionKey(name: string): string {
  return name.replaceAll(".", "_");
}
