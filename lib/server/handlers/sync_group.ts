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
import type { ApiHandler } from "../handler.ts";
import { groupCall } from "./_group_call.ts";

const errorBody = (code: number) => ({ errorCode: code, assignment: new Uint8Array(0) });

export const syncGroupHandler: ApiHandler<typeof ApiKey.SyncGroup> = {
  apiKey: ApiKey.SyncGroup,
  minVersion: 0,
  maxVersion: 5,
  handle: (ctx, req) =>
    groupCall(
      ctx,
      req.groupId,
      errorBody,
      (core, id, now) => core.syncGroup(id, req, ctx.header.apiVersion, now),
    ),
  errorResponse: (_req, code) => errorBody(code),
};
