/**
 * DescribeGroups (key 15): v0-5.
 *
 * Behaviour: state, protocol and members (client id, host, metadata, assignment) of each
 * group; groups this node does not coordinate get NOT_COORDINATOR, unknown groups the
 * Dead state (as Kafka).
 *
 * Version notes: authorized operations (v3+) are not computed (no ACLs).
 */
import { ApiKey, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

export const describeGroupsHandler: ApiHandler<typeof ApiKey.DescribeGroups> = {
  apiKey: ApiKey.DescribeGroups,
  minVersion: 0,
  maxVersion: 5,
  handle(ctx, req) {
    const { groups } = ctx.services;
    const local = req.groups.filter((g) => groups.coordinatorError(g) === ErrorCode.NONE);
    const described = groups.read((core) =>
      core.describeGroups({ ...req, groups: local }, ctx.header.apiVersion)
    );
    const byId = new Map((described.groups ?? []).map((g) => [g?.groupId, g]));
    return respond({
      groups: req.groups.map((g) =>
        byId.get(g) ?? { groupId: g, errorCode: groups.coordinatorError(g), members: [] }
      ),
    });
  },
  errorResponse: (req, code) => ({
    groups: req.groups.map((g) => ({ groupId: g, errorCode: code })),
  }),
};
