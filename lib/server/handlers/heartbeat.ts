/**
 * Heartbeat (key 12): v0-4.
 *
 * Behaviour: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin,
 * ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID that it was removed.
 *
 * Version notes: v3+ carries the static member id.
 */
import { ApiKey } from "../../protocol/mod.ts";
import { singleGroupHandler } from "./_group_call.ts";

export const heartbeatHandler = singleGroupHandler({
  apiKey: ApiKey.Heartbeat,
  minVersion: 0,
  maxVersion: 4,
  groupId: (req) => req.groupId,
  errorBody: (_req, code) => ({ errorCode: code }),
  run: (core, id, req, v, now) => core.heartbeat(id, req, v, now),
});
