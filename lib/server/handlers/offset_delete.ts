/**
 * OffsetDelete (key 47): v0.
 *
 * Behaviour: deletes a group's committed offsets for the given partitions, unless the
 * group is active and subscribed to the topic (GROUP_SUBSCRIBED_TO_TOPIC).
 *
 * Version notes: none.
 */
import { ApiKey } from "../../protocol/mod.ts";
import type { ApiHandler } from "../handler.ts";
import { groupCall } from "./_group_call.ts";

const errorBody = (code: number) => ({ errorCode: code, topics: [] });

export const offsetDeleteHandler: ApiHandler<typeof ApiKey.OffsetDelete> = {
  apiKey: ApiKey.OffsetDelete,
  minVersion: 0,
  maxVersion: 0,
  handle: (ctx, req) =>
    groupCall(
      ctx,
      req.groupId,
      errorBody,
      (core, id, now) => core.offsetDelete(id, req, ctx.header.apiVersion, now),
    ),
  errorResponse: (_req, code) => errorBody(code),
};
