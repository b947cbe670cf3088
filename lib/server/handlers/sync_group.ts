/**
 * SyncGroup (key 14): v0-5.
 *
 * Behaviour: the leader's assignments are persisted with the group and handed to every
 * member; followers wait for the leader's SyncGroup. Assignments are opaque bytes, so
 * eager and cooperative assignors both work.
 *
 * Version notes: v5 checks and returns protocol type and name.
 */
import { ApiKey } from "../../protocol/mod.ts";
import { singleGroupHandler } from "./_group_call.ts";

export const syncGroupHandler = singleGroupHandler({
  apiKey: ApiKey.SyncGroup,
  minVersion: 0,
  maxVersion: 5,
  groupId: (req) => req.groupId,
  errorBody: (_req, code) => ({ errorCode: code, assignment: new Uint8Array(0) }),
  run: (core, id, req, v, now) => core.syncGroup(id, req, v, now),
});
