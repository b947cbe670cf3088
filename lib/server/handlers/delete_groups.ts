/**
 * DeleteGroups (key 42): v0-2.
 *
 * Behaviour: deletes empty groups and their committed offsets (tombstones in
 * __consumer_offsets); NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND for
 * unknown groups, NOT_COORDINATOR for groups coordinated elsewhere.
 *
 * Version notes: none.
 */
import { ApiKey, type DeleteGroupsRequest, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

function errorBody(names: readonly string[], code: number | ((g: string) => number)) {
  return {
    results: names.map((g) => ({
      groupId: g,
      errorCode: typeof code === "number" ? code : code(g),
    })),
  };
}

export const deleteGroupsHandler: ApiHandler<typeof ApiKey.DeleteGroups> = {
  apiKey: ApiKey.DeleteGroups,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, req: DeleteGroupsRequest) {
    const { groups } = ctx.services;
    const local = req.groupsNames.filter((g) => groups.coordinatorError(g) === ErrorCode.NONE);
    const foreign = errorBody(req.groupsNames, (g) => groups.coordinatorError(g));
    if (local.length === 0) return respond(foreign);
    const res = await groups.call((core, id, now) =>
      core.deleteGroups(id, { ...req, groupsNames: local }, ctx.header.apiVersion, now)
    ) as { results?: { groupId: string; errorCode: number }[] };
    const byId = new Map((res.results ?? []).map((r) => [r.groupId, r]));
    return respond({
      results: req.groupsNames.map((g) =>
        byId.get(g) ?? foreign.results.find((r) => r.groupId === g)!
      ),
    });
  },
  errorResponse: (req, code) => errorBody(req.groupsNames, code),
};
