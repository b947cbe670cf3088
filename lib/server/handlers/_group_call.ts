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
