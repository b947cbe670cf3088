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
import { ApiKey, ErrorCode, type OffsetCommitRequest } from "../../protocol/mod.ts";
import type { ApiHandler } from "../handler.ts";
import { respond } from "../handler.ts";
import { groupCall } from "./_group_call.ts";

function errorBody(req: OffsetCommitRequest, code: number) {
  return {
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })),
    })),
  };
}

type Body = ReturnType<typeof errorBody>;

export const offsetCommitHandler: ApiHandler<typeof ApiKey.OffsetCommit> = {
  apiKey: ApiKey.OffsetCommit,
  minVersion: 0,
  maxVersion: 9,
  handle(ctx, req: OffsetCommitRequest) {
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
    if (unknown.length === 0) {
      return groupCall(
        ctx,
        req.groupId,
        (code) => errorBody(req, code),
        (core, id, now) => core.offsetCommit(id, req, ctx.header.apiVersion, now),
      );
    }
    if (known.topics.length === 0) return respond({ topics: unknown });
    const reply = groupCall<Body>(
      ctx,
      req.groupId,
      (code) => errorBody(known, code),
      (core, id, now) => core.offsetCommit(id, known, ctx.header.apiVersion, now),
    );
    if (reply.kind !== "respond") return reply;
    return respond(
      Promise.resolve(reply.response).then((r) => ({ topics: [...r.topics, ...unknown] })),
    );
  },
  errorResponse: (req, code) => errorBody(req, code),
};
