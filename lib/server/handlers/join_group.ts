/**
 * JoinGroup (key 11): v0-9.
 *
 * Behaviour: the classic group protocol's join phase (see lib/group): member ids with the
 * MEMBER_ID_REQUIRED round trip (v4+), static members (v5+), protocol selection, a join
 * phase bounded by the rebalance timeout (and the initial rebalance delay for a new
 * group). The response waits until the join phase completes.
 *
 * Version notes: v7+ returns the protocol type; v9 skipAssignment is always false.
 */
import { ApiKey, type JoinGroupRequest } from "../../protocol/mod.ts";
import type { ApiHandler } from "../handler.ts";
import { groupCall } from "./_group_call.ts";

function errorBody(req: JoinGroupRequest, code: number) {
  return { errorCode: code, generationId: -1, leader: "", memberId: req.memberId, members: [] };
}

export const joinGroupHandler: ApiHandler<typeof ApiKey.JoinGroup> = {
  apiKey: ApiKey.JoinGroup,
  minVersion: 0,
  maxVersion: 9,
  handle: (ctx, req) =>
    groupCall(
      ctx,
      req.groupId,
      (code) => errorBody(req, code),
      (core, id, now) =>
        core.joinGroup(id, req, ctx.header.apiVersion, now, {
          clientId: ctx.header.clientId ?? "",
          clientHost: ctx.clientHost,
        }),
    ),
  errorResponse: (req, code) => errorBody(req, code),
};
