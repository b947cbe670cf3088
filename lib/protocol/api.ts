/**
 * The API table: which schemas exist for which API key, with names and version ranges
 * as in Kafka's JSON definitions.
 *
 * @module
 */

import { SCHEMAS } from "./generated/schemas.ts";
import type { MessageSchema } from "./schema.ts";

const REQUESTS = new Map<number, MessageSchema>();
const RESPONSES = new Map<number, MessageSchema>();
const DATA = new Map<string, MessageSchema>();
for (const s of SCHEMAS) {
  if (s.type === "request") REQUESTS.set(s.apiKey!, s);
  else if (s.type === "response") RESPONSES.set(s.apiKey!, s);
  else DATA.set(s.name, s);
}

/** The request schema of `apiKey`, or undefined for a key unknown to the table. */
export function requestSchema(apiKey: number): MessageSchema | undefined {
  return REQUESTS.get(apiKey);
}

/** The response schema of `apiKey`, or undefined for a key unknown to the table. */
export function responseSchema(apiKey: number): MessageSchema | undefined {
  return RESPONSES.get(apiKey);
}

/** The schema of a standalone data type ("ConsumerProtocolAssignment"). */
export function dataSchema(name: string): MessageSchema | undefined {
  return DATA.get(name);
}

/** Every API key in the table, ascending. */
export function apiKeys(): number[] {
  return [...REQUESTS.keys()].sort((a, b) => a - b);
}

/**
 * Kafka's name of an API ("Produce" for 0), or undefined for an unknown key.
 *
 * @example
 * ```ts
 * import { apiName } from "./api.ts";
 * if (apiName(0) !== "Produce") throw new Error("wrong name");
 * ```
 */
export function apiName(apiKey: number): string | undefined {
  return REQUESTS.get(apiKey)?.name.replace(/Request$/, "");
}

/** The valid versions of an API (Kafka's `validVersions`), or undefined for an unknown key. */
export function schemaVersionRange(apiKey: number): { min: number; max: number } | undefined {
  const s = REQUESTS.get(apiKey);
  return s === undefined ? undefined : { min: s.validVersions[0], max: s.validVersions[1] };
}

/**
 * Whether requests and responses of `apiKey` at `apiVersion` are flexible (compact
 * encodings, tagged fields, header v2/v1). Open-ended, so versions above the valid range
 * count as flexible when the flexible range is open ("3+"), as in Kafka.
 */
export function isFlexibleVersion(apiKey: number, apiVersion: number): boolean {
  const s = REQUESTS.get(apiKey);
  return s !== undefined && s.flexibleVersions !== null && apiVersion >= s.flexibleVersions[0];
}
