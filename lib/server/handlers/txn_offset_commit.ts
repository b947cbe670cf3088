/**
 * TxnOffsetCommit (key 28): v0-4.
 *
 * Behaviour: a transactional producer's offsets for a consumer group (KIP-98, KIP-447's
 * group metadata from v3: member id, generation, instance id, checked when given). They are
 * written to the group's `__consumer_offsets` partition as a transactional batch of the
 * producer and become visible when the transaction's commit marker reaches that partition
 * (dropped on abort); meanwhile OffsetFetch with requireStable answers
 * UNSTABLE_OFFSET_COMMIT for them. An older producer epoch gets INVALID_PRODUCER_EPOCH (the
 * partition's producer state refuses the batch). Partitions of unknown topics get
 * UNKNOWN_TOPIC_OR_PARTITION, as OffsetCommit.
 */
import { ApiKey, type TxnOffsetCommitRequest } from "../../protocol/mod.ts";
import type { ApiHandler } from "../handler.ts";
import { commitKnownPartitions } from "./_group_call.ts";

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
  handle: (ctx, req: TxnOffsetCommitRequest) =>
    commitKnownPartitions(
      ctx,
      req,
      req.groupId,
      errorBody,
      (core, id, now, known) => core.txnOffsetCommit(id, known, ctx.header.apiVersion, now),
    ),
  errorResponse: (req, code) => errorBody(req, code),
};
