/**
 * Heartbeat (key 12): v0-4.
 *
 * Behaviour: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin,
 * ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID that it was removed.
 *
 * Version notes: v3+ carries the static member id.
 */
import { ApiKey } from "../../protocol/mod.ts";
import type { ApiHandler } from "../handler.ts";
import { groupCall } from "./_group_call.ts";

const errorBody = (code: number) => ({ errorCode: code });

export const heartbeatHandler: ApiHandler<typeof ApiKey.Heartbeat> = {
  apiKey: ApiKey.Heartbeat,
  minVersion: 0,
  maxVersion: 4,
  handle: (ctx, req) =>
    groupCall(
      ctx,
      req.groupId,
      errorBody,
      (core, id, now) => core.heartbeat(id, req, ctx.header.apiVersion, now),
    ),
  errorResponse: (_req, code) => errorBody(code),
};
