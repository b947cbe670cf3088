/**
 * OffsetFetch (key 9): v0-9.
 *
 * Behaviour: committed offsets of one group (v0-7) or several (v8+); a partition with no
 * commit gets offset -1. `topics: null` (v2+) means every committed partition.
 *
 * Version notes: v2+ has a top-level error code; v8+ the multi-group form, where each
 * group gets NOT_COORDINATOR separately when this node does not coordinate it.
 */
import { ApiKey, ErrorCode, type OffsetFetchRequest } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

function errorBody(req: OffsetFetchRequest, code: number) {
  return {
    errorCode: code,
    topics: (req.topics ?? []).map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((p) => ({
        partitionIndex: p,
        committedOffset: -1n,
        errorCode: code,
      })),
    })),
    groups: req.groups.map((g) => ({ groupId: g.groupId, errorCode: code, topics: [] })),
  };
}

export const offsetFetchHandler: ApiHandler<typeof ApiKey.OffsetFetch> = {
  apiKey: ApiKey.OffsetFetch,
  minVersion: 0,
  maxVersion: 9,
  handle(ctx, req) {
    const version = ctx.header.apiVersion;
    const { groups } = ctx.services;
    const ids = version >= 8 ? req.groups.map((g) => g.groupId) : [req.groupId];
    const code = ids.map((g) => groups.coordinatorError(g)).find((c) => c !== ErrorCode.NONE);
    if (code !== undefined) return respond(errorBody(req, code));
    return respond(groups.read((core) => core.offsetFetch(req, version)));
  },
  errorResponse: (req, code) => errorBody(req, code),
};
