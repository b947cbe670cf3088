/**
 * DescribeAcls (key 29), CreateAcls (key 30), DeleteAcls (key 31): v0-3.
 *
 * Behaviour: Tidelog has no authorizer yet, so every ACL request is answered with
 * SECURITY_DISABLED, as Kafka answers when `authorizer.class.name` is unset (the admin
 * client raises SecurityDisabledException; `kafka-acls --list` prints it).
 *
 * Version notes: v1+ adds pattern types; v2+ is flexible. None changes the answer.
 */
import { ApiKey, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

const NO_AUTHORIZER = "No Authorizer is configured.";

export const describeAclsHandler: ApiHandler<typeof ApiKey.DescribeAcls> = {
  apiKey: ApiKey.DescribeAcls,
  minVersion: 0,
  maxVersion: 3,
  handle: () =>
    respond({
      errorCode: ErrorCode.SECURITY_DISABLED,
      errorMessage: NO_AUTHORIZER,
      resources: [],
    }),
  errorResponse: (_req, code) => ({ errorCode: code, errorMessage: null, resources: [] }),
};

export const createAclsHandler: ApiHandler<typeof ApiKey.CreateAcls> = {
  apiKey: ApiKey.CreateAcls,
  minVersion: 0,
  maxVersion: 3,
  handle: (_ctx, req) =>
    respond({
      results: req.creations.map(() => ({
        errorCode: ErrorCode.SECURITY_DISABLED,
        errorMessage: NO_AUTHORIZER,
      })),
    }),
  errorResponse: (req, code) => ({
    results: req.creations.map(() => ({ errorCode: code, errorMessage: null })),
  }),
};

export const deleteAclsHandler: ApiHandler<typeof ApiKey.DeleteAcls> = {
  apiKey: ApiKey.DeleteAcls,
  minVersion: 0,
  maxVersion: 3,
  handle: (_ctx, req) =>
    respond({
      filterResults: req.filters.map(() => ({
        errorCode: ErrorCode.SECURITY_DISABLED,
        errorMessage: NO_AUTHORIZER,
        matchingAcls: [],
      })),
    }),
  errorResponse: (req, code) => ({
    filterResults: req.filters.map(() => ({
      errorCode: code,
      errorMessage: null,
      matchingAcls: [],
    })),
  }),
};
