/**
 * OffsetCommit (key 8): v0-9.
 *
 * Behaviour: stores committed offsets (with leader epoch and metadata) as records in the
 * group's __consumer_offsets partition and answers once they are durable. Members must
 * match the current generation; a group with no members accepts "simple" commits
 * (generation -1, no member id), as consumers using assign() make. A partition of a
 * topic that does not exist (or beyond its partition count) gets
 * UNKNOWN_TOPIC_OR_PARTITION and is not stored, as Kafka's KafkaApis filters it; the
 * rest of the request is committed.
 *
 * Version notes: v1 carried a commit timestamp and v2-4 a retention time (both ignored
 * by Kafka 2.1+, and here); v6+ leader epochs; v7+ static members.
 */
import { ApiKey, type OffsetCommitRequest } from "../../protocol/mod.ts";
import type { ApiHandler } from "../handler.ts";
import { commitKnownPartitions } from "./_group_call.ts";

function errorBody(req: OffsetCommitRequest, code: number) {
  return {
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })),
    })),
  };
}

export const offsetCommitHandler: ApiHandler<typeof ApiKey.OffsetCommit> = {
  apiKey: ApiKey.OffsetCommit,
  minVersion: 0,
  maxVersion: 9,
  handle: (ctx, req: OffsetCommitRequest) =>
    commitKnownPartitions(
      ctx,
      req,
      req.groupId,
      errorBody,
      (core, id, now, known) => core.offsetCommit(id, known, ctx.header.apiVersion, now),
    ),
  errorResponse: (req, code) => errorBody(req, code),
};
