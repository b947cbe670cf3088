/**
 * ListGroups (key 16): v0-5.
 *
 * Behaviour: every group this node coordinates, with protocol type and (v4+) state;
 * v4+ filters by state and v5+ by type.
 *
 * Version notes: none beyond the filters.
 */
import { ApiKey, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

export const listGroupsHandler: ApiHandler<typeof ApiKey.ListGroups> = {
  apiKey: ApiKey.ListGroups,
  minVersion: 0,
  maxVersion: 5,
  handle(ctx, req) {
    const { groups } = ctx.services;
    if (!groups.ready) return respond({ errorCode: ErrorCode.NONE, groups: [] });
    return respond(groups.read((core) => core.listGroups(req, ctx.header.apiVersion)));
  },
  errorResponse: (_req, code) => ({ errorCode: code, groups: [] }),
};
