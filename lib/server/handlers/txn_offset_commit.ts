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
import { ApiKey, ErrorCode, type TxnOffsetCommitRequest } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { groupCall } from "./_group_call.ts";

function errorBody(req: TxnOffsetCommitRequest, code: number) {
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })),
    })),
  };
}

type Body = ReturnType<typeof errorBody>;

export const txnOffsetCommitHandler: ApiHandler<typeof ApiKey.TxnOffsetCommit> = {
  apiKey: ApiKey.TxnOffsetCommit,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, req: TxnOffsetCommitRequest) {
    const image = ctx.services.metadata.image;
    const exists = (name: string, partition: number) => {
      const t = image.topic(name);
      return t !== undefined && partition >= 0 && partition < t.partitions.length;
    };
    const known = {
      ...req,
      topics: req.topics
        .map((t) => ({
          ...t,
          partitions: t.partitions.filter((p) => exists(t.name, p.partitionIndex)),
        }))
        .filter((t) => t.partitions.length > 0),
    };
    const unknown = req.topics
      .map((t) => ({
        name: t.name,
        partitions: t.partitions.filter((p) => !exists(t.name, p.partitionIndex)).map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        })),
      }))
      .filter((t) => t.partitions.length > 0);
    if (known.topics.length === 0) return respond({ throttleTimeMs: 0, topics: unknown });
    const reply = groupCall<Body>(
      ctx,
      req.groupId,
      (code) => errorBody(known, code),
      (core, id, now) => core.txnOffsetCommit(id, known, ctx.header.apiVersion, now),
    );
    if (reply.kind !== "respond" || unknown.length === 0) return reply;
    return respond(
      Promise.resolve(reply.response).then((r) => ({
        throttleTimeMs: 0,
        topics: [...r.topics, ...unknown],
      })),
    );
  },
  errorResponse: (req, code) => errorBody(req, code),
};
