/**
 * Request and response headers. Request header v0 is apiKey, apiVersion, correlationId;
 * v1 adds a nullable clientId (never compact); v2 adds tagged fields. Response header v0 is
 * the correlationId; v1 adds tagged fields. Flexible API versions use the newer header,
 * except that ApiVersions responses always use v0 (a client parses them before it knows
 * which versions the broker speaks) and ControlledShutdown v0 requests use v0.
 *
 * @module
 */

import { isFlexibleVersion } from "./api.ts";
import { ByteReader, type ByteWriter, ProtocolDecodeError } from "./bytes.ts";

/** A request header (all versions; clientId is null in v0). */
export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

const API_VERSIONS = 18;
const CONTROLLED_SHUTDOWN = 7;

/** The request header version (0, 1 or 2) for an API key and version. */
export function requestHeaderVersion(apiKey: number, apiVersion: number): 0 | 1 | 2 {
  if (apiKey === CONTROLLED_SHUTDOWN && apiVersion === 0) return 0;
  return isFlexibleVersion(apiKey, apiVersion) ? 2 : 1;
}

/** The response header version (0 or 1) for an API key and version. */
export function responseHeaderVersion(apiKey: number, apiVersion: number): 0 | 1 {
  if (apiKey === API_VERSIONS) return 0;
  return isFlexibleVersion(apiKey, apiVersion) ? 1 : 0;
}

/** Skips a tagged-field section (headers have no known tagged fields). */
function skipTaggedFields(r: ByteReader): void {
  const n = r.uvarint();
  r.checkCount(n, 2, "header tagged fields");
  for (let i = 0; i < n; i++) {
    r.uvarint();
    r.raw(r.uvarint());
  }
}

/**
 * Parses the header of a request frame (the bytes after the int32 size). The header
 * version follows from apiKey and apiVersion; an apiKey unknown to the schema table gets
 * a v1 header.
 *
 * @returns The header and the offset where the body starts.
 * @throws {ProtocolDecodeError} On short or malformed input.
 *
 * @example
 * ```ts
 * import { decodeRequestHeader } from "./headers.ts";
 * // ApiVersions v0, correlation id 7, client id "c".
 * const frame = new Uint8Array([0, 18, 0, 0, 0, 0, 0, 7, 0, 1, 99]);
 * const { header, bodyOffset } = decodeRequestHeader(frame);
 * if (header.clientId !== "c" || bodyOffset !== 11) throw new Error("bad header");
 * ```
 */
export function decodeRequestHeader(
  frame: Uint8Array,
): { header: RequestHeader; bodyOffset: number } {
  const r = new ByteReader(frame);
  try {
    const apiKey = r.int16();
    const apiVersion = r.int16();
    const correlationId = r.int32();
    const hv = requestHeaderVersion(apiKey, apiVersion);
    const clientId = hv >= 1 ? r.string(true) : null;
    if (hv >= 2) skipTaggedFields(r);
    return { header: { apiKey, apiVersion, correlationId, clientId }, bodyOffset: r.offset };
  } catch (e) {
    if (e instanceof ProtocolDecodeError) {
      throw new ProtocolDecodeError(`Cannot decode request header: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** Writes a request header of the version `apiKey`/`apiVersion` need. */
export function writeRequestHeader(
  w: ByteWriter,
  header: { apiKey: number; apiVersion: number; correlationId: number; clientId?: string | null },
): void {
  const hv = requestHeaderVersion(header.apiKey, header.apiVersion);
  w.int16(header.apiKey);
  w.int16(header.apiVersion);
  w.int32(header.correlationId);
  if (hv >= 1) w.string(header.clientId ?? null);
  if (hv >= 2) w.uvarint(0);
}

/** Writes a response header of the version `apiKey`/`apiVersion` need. */
export function writeResponseHeader(
  w: ByteWriter,
  apiKey: number,
  apiVersion: number,
  correlationId: number,
): void {
  w.int32(correlationId);
  if (responseHeaderVersion(apiKey, apiVersion) >= 1) w.uvarint(0);
}

/**
 * Parses a response header.
 *
 * @returns The correlation id and the offset where the body starts.
 * @throws {ProtocolDecodeError} On short or malformed input.
 */
export function decodeResponseHeader(
  apiKey: number,
  apiVersion: number,
  frame: Uint8Array,
): { correlationId: number; bodyOffset: number } {
  const r = new ByteReader(frame);
  try {
    const correlationId = r.int32();
    if (responseHeaderVersion(apiKey, apiVersion) >= 1) skipTaggedFields(r);
    return { correlationId, bodyOffset: r.offset };
  } catch (e) {
    if (e instanceof ProtocolDecodeError) {
      throw new ProtocolDecodeError(`Cannot decode response header: ${e.message}`, { cause: e });
    }
    throw e;
  }
}
