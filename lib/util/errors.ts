import { ErrorCode, errorName } from "../protocol/error_codes.ts";

/**
 * An expected failure that maps to a Kafka error code at the protocol edge. Subsystems
 * throw these (or subclasses); handlers put `code` into the response for the partition,
 * topic or group concerned.
 */
export class TidelogError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = `TidelogError(${errorName(code)})`;
  }
}

/** A record batch failed validation (CRC, lengths, magic, counts). */
export class CorruptBatchError extends TidelogError {
  constructor(message: string) {
    super(ErrorCode.CORRUPT_MESSAGE, message);
  }
}

/** The requested offset is outside [logStartOffset, logEndOffset]. */
export class OffsetOutOfRangeError extends TidelogError {
  constructor(message: string) {
    super(ErrorCode.OFFSET_OUT_OF_RANGE, message);
  }
}

/**
 * The Kafka code for any thrown value: a {@linkcode TidelogError}'s own code, anything
 * else UNKNOWN_SERVER_ERROR (the caller logs it with its stack).
 */
export function errorCodeOf(err: unknown): ErrorCode {
  return err instanceof TidelogError ? err.code : ErrorCode.UNKNOWN_SERVER_ERROR;
}
