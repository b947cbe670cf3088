/**
 * LeaveGroup (key 13): v0-5.
 *
 * Behaviour: removes members (by member id, or by group.instance.id for static members)
 * and starts a rebalance for the rest.
 *
 * Version notes: v0-2 name one member; v3+ a batch with per-member results; v5 a reason.
 */
import { ApiKey } from "../../protocol/mod.ts";
import type { ApiHandler } from "../handler.ts";
import { groupCall } from "./_group_call.ts";

const errorBody = (code: number) => ({ errorCode: code, members: [] });

export const leaveGroupHandler: ApiHandler<typeof ApiKey.LeaveGroup> = {
  apiKey: ApiKey.LeaveGroup,
  minVersion: 0,
  maxVersion: 5,
  handle: (ctx, req) =>
    groupCall(
      ctx,
      req.groupId,
      errorBody,
      (core, id, now) => core.leaveGroup(id, req, ctx.header.apiVersion, now),
    ),
  errorResponse: (_req, code) => errorBody(code),
};
