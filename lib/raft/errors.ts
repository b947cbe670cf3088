/**
 * Expected failures of Raft proposals, for callers to catch. They map to Kafka codes at
 * the protocol edge (the Raft leader is the controller: NOT_CONTROLLER).
 */
import { ErrorCode } from "../protocol/error_codes.ts";
import { TidelogError } from "../util/errors.ts";

/**
 * This node is not (or no longer) the leader. `leaderId` is the leader it knows of
 * (undefined if none). `maybeCommitted` is true when leadership was lost after the entry
 * was appended: it may still commit, so retries must be idempotent.
 */
export class NotLeaderError extends TidelogError {
  readonly leaderId: number | undefined;
  readonly maybeCommitted: boolean;
  constructor(leaderId: number | undefined, options: { maybeCommitted?: boolean } = {}) {
    const known = leaderId === undefined ? "leader unknown" : `leader is ${leaderId}`;
    const lost = options.maybeCommitted === true ? "Leadership lost before commit" : "Not leader";
    super(ErrorCode.NOT_CONTROLLER, `${lost}: ${known}`);
    this.name = "NotLeaderError";
    this.leaderId = leaderId;
    this.maybeCommitted = options.maybeCommitted === true;
  }
}

/**
 * The leader refused or lost the proposal: a leadership transfer or an earlier
 * membership change is in progress, the change is invalid, or its log slot was taken
 * by another entry.
 */
export class ProposalDroppedError extends TidelogError {
  constructor(message: string) {
    super(ErrorCode.REQUEST_TIMED_OUT, message);
    this.name = "ProposalDroppedError";
  }
}

/** The driver was closed (or failed) before the proposal settled. */
export class RaftClosedError extends TidelogError {
  constructor(message = "Raft driver is closed", options?: ErrorOptions) {
    super(ErrorCode.NOT_CONTROLLER, message, options);
    this.name = "RaftClosedError";
  }
}
