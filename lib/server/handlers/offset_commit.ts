/**
 * OffsetCommit (key 8): v0-9.
 *
 * Behaviour: stores committed offsets (with leader epoch and metadata) as records in the
 * group's __consumer_offsets partition and answers once they are durable. Members must
 * match the current generation; a group with no members accepts "simple" commits
 * (generation -1, no member id), as consumers using assign() make.
 *
 * Version notes: v1 carried a commit timestamp and v2-4 a retention time (both ignored
 * by Kafka 2.1+, and here); v6+ leader epochs; v7+ static members.
 */
import { ApiKey, type OffsetCommitRequest } from "../../protocol/mod.ts";
import { singleGroupHandler } from "./_group_call.ts";

function errorBody(req: OffsetCommitRequest, code: number) {
  return {
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: code })),
    })),
  };
}

export const offsetCommitHandler = singleGroupHandler({
  apiKey: ApiKey.OffsetCommit,
  minVersion: 0,
  maxVersion: 9,
  groupId: (req) => req.groupId,
  errorBody: (req, code) => errorBody(req, code),
  run: (core, id, req, v, now) => core.offsetCommit(id, req, v, now),
});
