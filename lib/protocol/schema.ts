/**
 * Types of the schema tables that `_gen/generate.ts` emits into `generated/schemas.ts`.
 * One {@linkcode MessageSchema} describes every version of a Kafka message, as Kafka's
 * own JSON definitions do.
 */

/** The open end of a version range ("3+" is `[3, VERSION_MAX]`). */
export const VERSION_MAX = 0x7fff;

/** An inclusive version range `[min, max]`. */
export type Versions = readonly [min: number, max: number];

/** A default value as written in Kafka's JSON, already converted to its JS type. */
export type DefaultValue = number | bigint | boolean | string | null;

/** One field of a message or struct. */
export interface FieldSchema {
  /** camelCase of Kafka's PascalCase name ("ErrorCode" → "errorCode"). */
  readonly name: string;
  /**
   * Kafka's type: a primitive ("int32", "string", "records", "uuid", ...), an array
   * ("[]int32", "[]TopicData") or a struct name ("LeaderIdAndEpoch").
   */
  readonly type: string;
  /** The TypeScript interface name, for struct and struct-array fields. */
  readonly struct?: string;
  /** Versions in which the field exists. */
  readonly versions: Versions;
  /** Versions in which the field may be null. */
  readonly nullableVersions?: Versions;
  /** Versions in which the field is a tagged field (with {@linkcode FieldSchema.tag}). */
  readonly taggedVersions?: Versions;
  /** The tag of a tagged field. */
  readonly tag?: number;
  /** An explicit default from the JSON; otherwise the type's zero value applies. */
  readonly default?: DefaultValue;
  /** Versions in which this (string) field is never compact, whatever the message says. */
  readonly flexibleVersions?: Versions | null;
  /** Fields of a struct or struct-array field. */
  readonly fields?: readonly FieldSchema[];
}

/** One message (request, response, or standalone data such as ConsumerProtocolAssignment). */
export interface MessageSchema {
  /** Kafka's message name ("ProduceRequest"), also the TypeScript interface name. */
  readonly name: string;
  /** The API key, for requests and responses. */
  readonly apiKey?: number;
  readonly type: "request" | "response" | "data";
  readonly validVersions: Versions;
  /** Versions using compact encodings and tagged fields, or null if none. */
  readonly flexibleVersions: Versions | null;
  /** Kafka marks the newest version as still unstable (not for production use). */
  readonly latestVersionUnstable?: boolean;
  readonly fields: readonly FieldSchema[];
}

/** Whether `version` lies in `range` (a missing range contains nothing). */
export function inVersions(range: Versions | null | undefined, version: number): boolean {
  return range != null && version >= range[0] && version <= range[1];
}

/** A tagged field this codec has no schema for, kept as raw bytes so it round-trips. */
export interface UnknownTaggedField {
  readonly tag: number;
  readonly data: Uint8Array;
}
