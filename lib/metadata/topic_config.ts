/**
 * Topic-level configuration: the keys Tidelog honours, their Kafka defaults, and
 * validation with Kafka's error semantics (unknown key or bad value → INVALID_CONFIG).
 */
import { ErrorCode } from "../protocol/error_codes.ts";
import { TidelogError } from "../util/errors.ts";

/** How a config value is parsed and checked. */
interface ConfigDef {
  readonly type: "long" | "int" | "string" | "list";
  readonly defaultValue: string;
  readonly validate: (value: string) => string | undefined; // error text, or undefined
  readonly doc: string;
}

function longAtLeast(min: number): (v: string) => string | undefined {
  return (v) => {
    if (!/^-?\d+$/.test(v)) return `must be an integer, got "${v}"`;
    const n = Number(v);
    if (!Number.isSafeInteger(n)) return `is out of range`;
    return n < min ? `must be at least ${min}` : undefined;
  };
}

function oneOf(...allowed: string[]): (v: string) => string | undefined {
  return (v) => allowed.includes(v) ? undefined : `must be one of ${allowed.join(", ")}`;
}

/** Kafka's defaults (KRaft broker, 3.x/4.x) for every topic config we support. */
export const TOPIC_CONFIG_DEFS: ReadonlyMap<string, ConfigDef> = new Map<string, ConfigDef>([
  ["cleanup.policy", {
    type: "list",
    defaultValue: "delete",
    // Log compaction is not implemented; accepting "compact" would silently keep everything.
    validate: oneOf("delete"),
    doc: "Retention policy: only delete is supported",
  }],
  ["retention.ms", {
    type: "long",
    defaultValue: "604800000",
    validate: longAtLeast(-1),
    doc: "How long segments are kept before deletion (-1: forever)",
  }],
  ["retention.bytes", {
    type: "long",
    defaultValue: "-1",
    validate: longAtLeast(-1),
    doc: "Partition size above which old segments are deleted (-1: no limit)",
  }],
  ["segment.bytes", {
    type: "int",
    defaultValue: "1073741824",
    validate: longAtLeast(14),
    doc: "Segment file size at which a new segment is rolled",
  }],
  ["segment.ms", {
    type: "long",
    defaultValue: "604800000",
    validate: longAtLeast(1),
    doc: "Age at which the active segment is rolled",
  }],
  ["segment.index.bytes", {
    type: "int",
    defaultValue: "10485760",
    validate: longAtLeast(4),
    doc: "Accepted for compatibility; index files grow as needed",
  }],
  ["index.interval.bytes", {
    type: "int",
    defaultValue: "4096",
    validate: longAtLeast(0),
    doc: "Bytes between offset index entries",
  }],
  ["message.timestamp.type", {
    type: "string",
    defaultValue: "CreateTime",
    validate: oneOf("CreateTime", "LogAppendTime"),
    doc: "Whether record timestamps are the producer's or the broker's append time",
  }],
  ["max.message.bytes", {
    type: "int",
    defaultValue: "1048588",
    validate: longAtLeast(0),
    doc: "Largest record batch accepted",
  }],
  ["min.insync.replicas", {
    type: "int",
    defaultValue: "1",
    validate: longAtLeast(1),
    doc: "Replicas that must acknowledge an acks=all write",
  }],
  ["compression.type", {
    type: "string",
    defaultValue: "producer",
    // Batches are stored as the producer sent them; recompression is not implemented.
    validate: oneOf("producer"),
    doc: "Only producer (store batches as sent) is supported",
  }],
]);

/** The value of `name` for a topic whose explicit overrides are `configs`. */
export function topicConfigValue(configs: Readonly<Record<string, string>>, name: string): string {
  const explicit = configs[name];
  if (explicit !== undefined) return explicit;
  const def = TOPIC_CONFIG_DEFS.get(name);
  if (!def) throw new RangeError(`Unknown topic config "${name}"`);
  return def.defaultValue;
}

/** A numeric config value (validated on the way in, so parsing cannot fail here). */
export function topicConfigNumber(configs: Readonly<Record<string, string>>, name: string): number {
  return Number(topicConfigValue(configs, name));
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
    const def = TOPIC_CONFIG_DEFS.get(name);
    if (!def) {
      throw new TidelogError(ErrorCode.INVALID_CONFIG, `Unknown topic config name: ${name}`);
    }
    if (name in out) throw new TidelogError(ErrorCode.INVALID_CONFIG, `Duplicate config: ${name}`);
    if (value === null) {
      throw new TidelogError(
        ErrorCode.INVALID_CONFIG,
        `Null value not supported for topic configs: ${name}`,
      );
    }
    const problem = def.validate(value.trim());
    if (problem) {
      throw new TidelogError(
        ErrorCode.INVALID_CONFIG,
        `Invalid value ${value} for configuration ${name}: ${problem}`,
      );
    }
    out[name] = value.trim();
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
