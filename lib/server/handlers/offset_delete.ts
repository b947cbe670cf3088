/**
 * OffsetDelete (key 47): v0.
 *
 * Behaviour: deletes a group's committed offsets for the given partitions, unless the
 * group is active and subscribed to the topic (GROUP_SUBSCRIBED_TO_TOPIC).
 *
 * Version notes: none.
 */
import { ApiKey } from "../../protocol/mod.ts";
import { singleGroupHandler } from "./_group_call.ts";

export const offsetDeleteHandler = singleGroupHandler({
  apiKey: ApiKey.OffsetDelete,
  minVersion: 0,
  maxVersion: 0,
  groupId: (req) => req.groupId,
  errorBody: (_req, code) => ({ errorCode: code, topics: [] }),
  run: (core, id, req, v, now) => core.offsetDelete(id, req, v, now),
});
