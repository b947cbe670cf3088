/**
 * Shared shape of the group APIs: check that this node coordinates the group, then run
 * the coordinator core through the GroupService (which persists before answering).
 */
import type { GroupCoordinator, RequestId } from "../../group/mod.ts";
import type { CoordinatorOutput } from "../../group/mod.ts";
import { ErrorCode } from "../../protocol/mod.ts";
import { type Reply, type RequestContext, respond } from "../handler.ts";

/**
 * Answers `errorBody(code)` when this node does not coordinate `groupId`; otherwise the
 * response the core produces for `call` (possibly after a rebalance completes).
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
