/**
 * TxnOffsetCommit (key 28): v0-4.
 *
 * Behaviour: a transactional producer's offsets for a consumer group (KIP-98, KIP-447's
 * group metadata from v3: member id, generation, instance id, checked when given). They are
 * written to the group's `__consumer_offsets` partition as a transactional batch of the
 * producer and become visible when the transaction's commit marker reaches that partition
 * (dropped on abort); meanwhile OffsetFetch with requireStable answers
 * UNSTABLE_OFFSET_COMMIT for them. An older producer epoch gets INVALID_PRODUCER_EPOCH (the
 * partition's producer state refuses the batch); offsets of a transaction that did not add
 * the group (AddOffsetsToTxn) INVALID_TXN_STATE. Partitions of unknown topics get
 * UNKNOWN_TOPIC_OR_PARTITION, as OffsetCommit.
 */
import { groupPartition, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS } from "../../group/mod.ts";
import { ApiKey, ErrorCode, type TxnOffsetCommitRequest } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";
import { verifyTransactionPartition } from "../txn_verification.ts";
import { commitKnownPartitions } from "./_group_call.ts";

/**
 * As Kafka's handleTxnCommitOffsets: before the producer's first offsets in the group's
 * `__consumer_offsets` partition in this transaction, the transaction coordinator confirms
 * AddOffsetsToTxn added that partition (else the commits would open a transaction there
 * that no marker ends). `code` NONE when they may be written, provided `stillValid()` says
 * so in the same step as the append (no marker came meanwhile).
 */
async function verifyOffsetsPartition(
  services: BrokerServices,
  req: TxnOffsetCommitRequest,
): Promise<{ code: ErrorCode; stillValid: () => boolean }> {
  const always = () => true;
  const id = groupPartition(req.groupId, OFFSETS_TOPIC_PARTITIONS);
  const partition = services.replicas.getPartition(OFFSETS_TOPIC, id);
  // Not hosted or not leading here: the group call answers NOT_COORDINATOR.
  if (!partition || !partition.isLeader) return { code: ErrorCode.NONE, stillValid: always };
  const state = partition.producerState.state;
  if (state.ongoingTransactions().has(req.producerId)) {
    return { code: ErrorCode.NONE, stillValid: always };
  }
  const markers = state.markersAppended;
  const code = await verifyTransactionPartition(services, req, OFFSETS_TOPIC, id);
  return {
    code: code === ErrorCode.NOT_ENOUGH_REPLICAS ? ErrorCode.COORDINATOR_NOT_AVAILABLE : code,
    stillValid: () => partition.producerState.state === state && state.markersAppended === markers,
  };
}

function errorBody(req: TxnOffsetCommitRequest, code: number) {
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })),
    })),
  };
}

export const txnOffsetCommitHandler: ApiHandler<typeof ApiKey.TxnOffsetCommit> = {
  apiKey: ApiKey.TxnOffsetCommit,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, req: TxnOffsetCommitRequest) {
    const verified = await verifyOffsetsPartition(ctx.services, req);
    // Checked in the same step as the append below: no marker may slip in between.
    const code = verified.code !== ErrorCode.NONE
      ? verified.code
      : verified.stillValid()
      ? ErrorCode.NONE
      : ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (code !== ErrorCode.NONE) return respond(errorBody(req, code));
    return commitKnownPartitions(
      ctx,
      req,
      req.groupId,
      errorBody,
      (core, id, now, known) => core.txnOffsetCommit(id, known, ctx.header.apiVersion, now),
    );
  },
  errorResponse: (req, code) => errorBody(req, code),
};
