/**
 * JoinGroup (key 11): v0-9.
 *
 * Behaviour: the classic group protocol's join phase (see lib/group): member ids with the
 * MEMBER_ID_REQUIRED round trip (v4+), static members (v5+), protocol selection, a join
 * phase bounded by the rebalance timeout (and the initial rebalance delay for a new
 * group). The response waits until the join phase completes.
 *
 * Version notes: v7+ returns the protocol type; v9 tells a static leader that rejoined
 * without changes to skip the assignment (KIP-814).
 */
import { ApiKey, type JoinGroupRequest } from "../../protocol/mod.ts";
import { singleGroupHandler } from "./_group_call.ts";

function errorBody(req: JoinGroupRequest, code: number) {
  return { errorCode: code, generationId: -1, leader: "", memberId: req.memberId, members: [] };
}

export const joinGroupHandler = singleGroupHandler({
  apiKey: ApiKey.JoinGroup,
  minVersion: 0,
  maxVersion: 9,
  groupId: (req) => req.groupId,
  errorBody: (req, code) => errorBody(req, code),
  run: (core, id, req, v, now, ctx) =>
    core.joinGroup(id, req, v, now, {
      clientId: ctx.header.clientId ?? "",
      clientHost: ctx.clientHost,
    }),
});
