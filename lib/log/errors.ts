import { ErrorCode } from "../protocol/error_codes.ts";
import { TidelogError } from "../util/errors.ts";

/**
 * The log's storage failed (an fsync or write error): the log accepts no more appends
 * and every pending {@linkcode PartitionLog.waitDurable} rejects (Kafka marks the log dir
 * offline with KAFKA_STORAGE_ERROR).
 */
export class KafkaStorageError extends TidelogError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.KAFKA_STORAGE_ERROR, message, options);
  }
}

/**
 * The log was closed (shutdown, partition moved or deleted) while the caller used it or
 * waited on it. Maps to NOT_LEADER_OR_FOLLOWER, so a client refreshes metadata and retries.
 */
export class LogClosedError extends TidelogError {
  constructor(message: string) {
    super(ErrorCode.NOT_LEADER_OR_FOLLOWER, message);
  }
}

/**
 * The offset a caller waited for was removed by {@linkcode PartitionLog.truncateTo}
 * before it became durable (the write is gone; a later write at the same offset is a
 * different record). Maps to NOT_LEADER_OR_FOLLOWER: truncation happens when a replica
 * follows a new leader.
 */
export class LogTruncatedError extends TidelogError {
  constructor(message: string) {
    super(ErrorCode.NOT_LEADER_OR_FOLLOWER, message);
  }
}
