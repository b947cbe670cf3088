/**
 * Shared shape of the group APIs: check that this node coordinates the group, then run
 * the coordinator core through the GroupService (which persists before answering).
 */
import type { CoordinatorOutput, GroupCoordinator, RequestId } from "../../group/mod.ts";
import { ErrorCode, type RequestTypes } from "../../protocol/mod.ts";
import {
  type ApiHandler,
  type ApiKeyWithSchema,
  type Reply,
  type RequestContext,
  respond,
} from "../handler.ts";

/**
 * Answers `errorBody(code)` when this node does not coordinate `groupId`; otherwise the
 * response the core produces for `call` (possibly after a rebalance completes). The
 * empty group id goes to the core, which applies Kafka's rules for it.
 */
export function groupCall<R>(
  ctx: RequestContext,
  groupId: string,
  errorBody: (code: number) => R,
  call: (core: GroupCoordinator, requestId: RequestId, nowMs: number) => CoordinatorOutput,
): Reply<R> {
  const { groups } = ctx.services;
  const code = groupId === "" ? ErrorCode.NONE : groups.coordinatorError(groupId);
  if (code !== ErrorCode.NONE) return respond(errorBody(code));
  return respond(groups.call(call) as Promise<R>);
}

/** A group API that names one group and is answered by one core call. */
export function singleGroupHandler<K extends ApiKeyWithSchema>(spec: {
  apiKey: K;
  minVersion: number;
  maxVersion: number;
  groupId: (req: RequestTypes[K]) => string;
  errorBody: (req: RequestTypes[K], code: number) => unknown;
  run: (
    core: GroupCoordinator,
    requestId: RequestId,
    req: RequestTypes[K],
    version: number,
    nowMs: number,
    ctx: RequestContext,
  ) => CoordinatorOutput;
}): ApiHandler<K> {
  return {
    apiKey: spec.apiKey,
    minVersion: spec.minVersion,
    maxVersion: spec.maxVersion,
    handle: (ctx, req) =>
      groupCall(
        ctx,
        spec.groupId(req),
        (code) => spec.errorBody(req, code),
        (core, id, now) => spec.run(core, id, req, ctx.header.apiVersion, now, ctx),
      ) as never,
    errorResponse: (req, code) => spec.errorBody(req, code) as never,
  };
}

/** A commit request's shape (OffsetCommit, TxnOffsetCommit): topics of partitions. */
interface CommitRequest {
  topics: { name: string; partitions: { partitionIndex: number }[] }[];
}

/** A commit response's shape: an error code per partition. */
interface CommitResponse {
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
}

/**
 * Commits offsets of the partitions that exist and answers UNKNOWN_TOPIC_OR_PARTITION for
 * the others without storing them, as Kafka's KafkaApis filters them (a partition beyond its
 * topic's count too); `call` gets the request narrowed to the known partitions.
 */
export function commitKnownPartitions<Q extends CommitRequest, R extends CommitResponse>(
  ctx: RequestContext,
  req: Q,
  groupId: string,
  errorBody: (req: Q, code: number) => R,
  call: (
    core: GroupCoordinator,
    requestId: RequestId,
    nowMs: number,
    known: Q,
  ) => CoordinatorOutput,
): Reply<R> {
  const image = ctx.services.metadata.image;
  const exists = (name: string, partition: number) => {
    const t = image.topic(name);
    return t !== undefined && partition >= 0 && partition < t.partitions.length;
  };
  const known: Q = {
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
  if (known.topics.length === 0) return respond({ ...errorBody(known, 0), topics: unknown });
  const reply = groupCall<R>(
    ctx,
    groupId,
    (code) => errorBody(known, code),
    (core, id, now) => call(core, id, now, known),
  );
  if (reply.kind !== "respond" || unknown.length === 0) return reply;
  return respond(
    Promise.resolve(reply.response).then((r) => ({ ...r, topics: [...r.topics, ...unknown] })),
  );
}
