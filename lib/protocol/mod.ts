/**
 * @module
 * The Kafka protocol layer. Owns the wire format: primitives ({@linkcode ByteReader},
 * {@linkcode ByteWriter}), request/response headers, the message schemas of every API
 * and version (generated from Kafka's JSON definitions into `generated/`, see
 * `_gen/generate.ts`), the generic schema-driven codec, RecordBatch v2 header checks and
 * Kafka's error codes. It does no I/O and knows nothing about topics or logs.
 *
 * Decoding returns the full interface for every version: fields absent in that version
 * hold their defaults. Encoding takes a {@linkcode DeepPartial}: missing fields take
 * their defaults, and fields absent in the version are skipped. Every decode failure
 * (truncation, bad lengths, trailing bytes) is a {@linkcode ProtocolDecodeError}.
 *
 * Non-obvious:
 * 1. ApiVersions responses always use response header v0; ControlledShutdown v0 requests
 *    use request header v0.
 * 2. `bytes` and `records` fields decode as zero-copy subarrays of the frame: copy them if
 *    they must outlive it. Large byte arrays given to the encoder are kept by reference
 *    until the frame is built, then copied once.
 * 3. int64 fields are `bigint`; UUIDs are Kafka's 22-character URL-safe base64 text.
 *
 * @example
 * ```ts
 * import { ApiKey, decodeRequestBody, decodeRequestHeader, encodeRequestFrame } from "./mod.ts";
 * const frame = encodeRequestFrame(ApiKey.Metadata, 4, { correlationId: 1, clientId: "c" }, {
 *   topics: [{ name: "t1" }],
 * });
 * const { header, bodyOffset } = decodeRequestHeader(frame.subarray(4));
 * const body = decodeRequestBody(ApiKey.Metadata, header.apiVersion, frame.subarray(4 + bodyOffset));
 * if (body.topics?.[0]?.name !== "t1") throw new Error("round trip failed");
 * ```
 */

export { ApiKey } from "./generated/api_keys.ts";
export type * from "./generated/types.ts";
export { SCHEMAS } from "./generated/schemas.ts";
export {
  apiKeys,
  apiName,
  dataSchema,
  isFlexibleVersion,
  requestSchema,
  responseSchema,
  schemaVersionRange,
} from "./api.ts";
export {
  ByteReader,
  type BytesSource,
  ByteWriter,
  ProtocolDecodeError,
  uuidToBytes,
  uuidToString,
  ZERO_UUID,
} from "./bytes.ts";
export {
  decodeMessage,
  type DeepPartial,
  defaultStruct,
  encodeMessage,
  fieldDefault,
} from "./codec.ts";
export {
  decodeRequestHeader,
  decodeResponseHeader,
  type RequestHeader,
  requestHeaderVersion,
  responseHeaderVersion,
  writeRequestHeader,
  writeResponseHeader,
} from "./headers.ts";
export {
  decodeData,
  decodeRequestBody,
  decodeResponseBody,
  decodeResponseFrame,
  encodeData,
  encodeRequestBody,
  encodeRequestFrame,
  encodeResponseBody,
  encodeResponseFrame,
} from "./frames.ts";
export {
  type DefaultValue,
  type FieldSchema,
  inVersions,
  type MessageSchema,
  type UnknownTaggedField,
  VERSION_MAX,
  type Versions,
} from "./schema.ts";
export { ErrorCode, errorName } from "./error_codes.ts";
export * from "./record_batch.ts";
export {
  type BatchProducer,
  type ControlMarker,
  type DecodedRecord,
  decodeRecords,
  encodeControlBatch,
  encodeRecordBatch,
  type KafkaRecord,
  readControlMarker,
} from "./record_codec.ts";
