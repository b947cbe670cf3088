/**
 * LeaveGroup (key 13): v0-5.
 *
 * Behaviour: removes members (by member id, or by group.instance.id for static members)
 * and starts a rebalance for the rest.
 *
 * Version notes: v0-2 name one member; v3+ a batch with per-member results; v5 a reason.
 */
import { ApiKey } from "../../protocol/mod.ts";
import { singleGroupHandler } from "./_group_call.ts";

export const leaveGroupHandler = singleGroupHandler({
  apiKey: ApiKey.LeaveGroup,
  minVersion: 0,
  maxVersion: 5,
  groupId: (req) => req.groupId,
  errorBody: (_req, code) => ({ errorCode: code, members: [] }),
  run: (core, id, req, v, now) => core.leaveGroup(id, req, v, now),
});
