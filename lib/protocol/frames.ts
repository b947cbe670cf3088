/**
 * Whole frames and bodies by API key: the typed entry points the server and clients use.
 *
 * @module
 */

import { dataSchema, requestSchema, responseSchema } from "./api.ts";
import { ByteWriter, ProtocolDecodeError } from "./bytes.ts";
import { decodeMessage, type DeepPartial, encodeMessage } from "./codec.ts";
import { decodeResponseHeader, writeRequestHeader, writeResponseHeader } from "./headers.ts";
import type { DataTypes, RequestTypes, ResponseTypes } from "./generated/types.ts";
import type { MessageSchema } from "./schema.ts";

function requireRequest(apiKey: number): MessageSchema {
  const s = requestSchema(apiKey);
  if (s === undefined) throw new RangeError(`Unknown API key ${apiKey}`);
  return s;
}

function requireResponse(apiKey: number): MessageSchema {
  const s = responseSchema(apiKey);
  if (s === undefined) throw new RangeError(`Unknown API key ${apiKey}`);
  return s;
}

/** Writes the int32 size prefix of a frame built with a 4-byte placeholder. */
function sealFrame(w: ByteWriter, alloc?: (size: number) => Uint8Array): Uint8Array {
  const out = w.finish(alloc);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setInt32(0, out.byteLength - 4);
  return out;
}

/**
 * Decodes a request body.
 *
 * @throws {ProtocolDecodeError} If the body is malformed, has trailing bytes, or the
 * key or version is unknown to the schema table.
 */
export function decodeRequestBody<K extends keyof RequestTypes>(
  apiKey: K,
  apiVersion: number,
  body: Uint8Array,
): RequestTypes[K] {
  const s = requestSchema(apiKey);
  if (s === undefined) {
    throw new ProtocolDecodeError(`Cannot decode request: unknown API key ${apiKey}`);
  }
  return decodeMessage(s, apiVersion, body) as unknown as RequestTypes[K];
}

/**
 * Decodes a response body.
 *
 * @throws {ProtocolDecodeError} If the body is malformed, has trailing bytes, or the
 * key or version is unknown to the schema table.
 */
export function decodeResponseBody<K extends keyof ResponseTypes>(
  apiKey: K,
  apiVersion: number,
  body: Uint8Array,
): ResponseTypes[K] {
  const s = responseSchema(apiKey);
  if (s === undefined) {
    throw new ProtocolDecodeError(`Cannot decode response: unknown API key ${apiKey}`);
  }
  return decodeMessage(s, apiVersion, body) as unknown as ResponseTypes[K];
}

/** Encodes a request body alone (no header, no size). */
export function encodeRequestBody<K extends keyof RequestTypes>(
  apiKey: K,
  apiVersion: number,
  body: DeepPartial<RequestTypes[K]>,
): Uint8Array {
  return encodeMessage(requireRequest(apiKey), apiVersion, body as object).finish();
}

/** Encodes a response body alone (no header, no size). */
export function encodeResponseBody<K extends keyof ResponseTypes>(
  apiKey: K,
  apiVersion: number,
  body: DeepPartial<ResponseTypes[K]>,
): Uint8Array {
  return encodeMessage(requireResponse(apiKey), apiVersion, body as object).finish();
}

/**
 * Encodes a whole response frame: int32 size, the response header this API version
 * needs, and the body. Missing fields take their defaults. `alloc` provides the frame's
 * buffer when given (see {@linkcode ByteWriter.finish}).
 *
 * @throws {RangeError} For an unknown API key or a version outside the schema's range.
 * @throws {TypeError} If a field is null where that version does not allow null.
 *
 * @example
 * ```ts
 * import { encodeResponseFrame } from "./frames.ts";
 * const frame = encodeResponseFrame(18, 0, 7, { errorCode: 35 });
 * // size 10 | correlation id 7 | errorCode 35 | empty apiKeys array
 * if (frame.length !== 14 || frame[3] !== 10) throw new Error("bad frame");
 * ```
 */
export function encodeResponseFrame<K extends keyof ResponseTypes>(
  apiKey: K,
  apiVersion: number,
  correlationId: number,
  body: DeepPartial<ResponseTypes[K]>,
  alloc?: (size: number) => Uint8Array,
): Uint8Array {
  const s = requireResponse(apiKey);
  const w = new ByteWriter();
  w.int32(0);
  writeResponseHeader(w, apiKey, apiVersion, correlationId);
  encodeMessage(s, apiVersion, body as object, w);
  return sealFrame(w, alloc);
}

/**
 * Encodes a whole request frame: int32 size, the request header this API version needs,
 * and the body.
 *
 * @throws {RangeError} For an unknown API key or a version outside the schema's range.
 */
export function encodeRequestFrame<K extends keyof RequestTypes>(
  apiKey: K,
  apiVersion: number,
  header: { correlationId: number; clientId?: string | null },
  body: DeepPartial<RequestTypes[K]>,
): Uint8Array {
  const s = requireRequest(apiKey);
  const w = new ByteWriter();
  w.int32(0);
  writeRequestHeader(w, {
    apiKey,
    apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId ?? null,
  });
  encodeMessage(s, apiVersion, body as object, w);
  return sealFrame(w);
}

/**
 * Decodes a whole response frame (the bytes after the int32 size).
 *
 * @throws {ProtocolDecodeError} If the frame is malformed or has trailing bytes.
 */
export function decodeResponseFrame<K extends keyof ResponseTypes>(
  apiKey: K,
  apiVersion: number,
  frame: Uint8Array,
): { correlationId: number; body: ResponseTypes[K] } {
  const { correlationId, bodyOffset } = decodeResponseHeader(apiKey, apiVersion, frame);
  return {
    correlationId,
    body: decodeResponseBody(apiKey, apiVersion, frame.subarray(bodyOffset)),
  };
}

/**
 * Decodes a standalone data type, such as the consumer protocol's subscription and
 * assignment inside JoinGroup/SyncGroup (those start with an int16 version; pass the
 * bytes after it).
 *
 * @throws {ProtocolDecodeError} If the bytes are malformed or have trailing bytes.
 */
export function decodeData<K extends keyof DataTypes>(
  name: K,
  version: number,
  bytes: Uint8Array,
): DataTypes[K] {
  const s = dataSchema(name);
  if (s === undefined) throw new ProtocolDecodeError(`Cannot decode: unknown data type ${name}`);
  return decodeMessage(s, version, bytes) as unknown as DataTypes[K];
}

/** Encodes a standalone data type (without a version prefix). */
export function encodeData<K extends keyof DataTypes>(
  name: K,
  version: number,
  value: DeepPartial<DataTypes[K]>,
): Uint8Array {
  const s = dataSchema(name);
  if (s === undefined) throw new RangeError(`Unknown data type ${name}`);
  return encodeMessage(s, version, value as object).finish();
}
