/**
 * ApiVersions (key 18): v0-4.
 *
 * Behaviour: lists exactly the APIs and versions this broker serves (the registry).
 * An unsupported ApiVersions version is answered by the broker with v0 and
 * UNSUPPORTED_VERSION (KIP-511), before reaching this handler.
 *
 * Version notes: v3+ is flexible and carries the client's software name and version,
 * which must match Kafka's pattern or INVALID_REQUEST is returned.
 */
import { ApiKey, type ApiVersionsRequest, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

const SOFTWARE_PATTERN = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/;

/** Builds the handler; `list` returns the registry's ranges (including this API). */
export function apiVersionsHandler(
  list: () => { apiKey: number; minVersion: number; maxVersion: number }[],
): ApiHandler<typeof ApiKey.ApiVersions> {
  return {
    apiKey: ApiKey.ApiVersions,
    minVersion: 0,
    maxVersion: 4,
    handle(_ctx, req: ApiVersionsRequest) {
      const badName = req.clientSoftwareName !== "" &&
        (!SOFTWARE_PATTERN.test(req.clientSoftwareName) ||
          !SOFTWARE_PATTERN.test(req.clientSoftwareVersion));
      return respond({
        errorCode: badName ? ErrorCode.INVALID_REQUEST : ErrorCode.NONE,
        apiKeys: list(),
      });
    },
    errorResponse: (_req, code) => ({ errorCode: code, apiKeys: list() }),
  };
}
