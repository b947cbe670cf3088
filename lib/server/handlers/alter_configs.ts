/**
 * AlterConfigs (key 33): v0-2, and IncrementalAlterConfigs (key 44): v0-1.
 *
 * Behaviour: TOPIC resources change the topic's overrides, BROKER resources the dynamic
 * broker configs of one broker (its id) or the cluster-wide default (""); the change is
 * a metadata record, so every node applies it live (retention, segment size,
 * min.insync.replicas, ...). AlterConfigs replaces every override of the resource;
 * IncrementalAlterConfigs applies SET, DELETE, APPEND and SUBTRACT (lists only).
 * Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; unknown key or bad value: INVALID_CONFIG;
 * a resource named twice or a key named twice: INVALID_REQUEST; other resource types
 * (broker loggers, client metrics, groups): INVALID_REQUEST. `validateOnly` checks
 * without changing anything. A node that is not the controller forwards the request.
 *
 * Version notes: AlterConfigs v2+ and IncrementalAlterConfigs v1+ are flexible.
 */
import {
  AlterConfigOp,
  type ConfigResource,
  type MetadataImage,
  type MetadataRecord,
  planAlterConfigs,
  planIncrementalAlterConfigs,
} from "../../metadata/mod.ts";
import {
  type AlterConfigsRequest,
  ApiKey,
  ErrorCode,
  type IncrementalAlterConfigsRequest,
} from "../../protocol/mod.ts";
import { TidelogError } from "../../util/errors.ts";
import { type ApiHandler, type RequestContext, respond } from "../handler.ts";
import { forwardToController } from "../forward.ts";

interface ResourceResult {
  resourceType: number;
  resourceName: string;
  errorCode: number;
  errorMessage: string | null;
}

/** The overrides `resource` has in `image` (undefined for a missing topic). */
function overridesOf(
  image: MetadataImage,
  r: ConfigResource,
): Readonly<Record<string, string>> | undefined {
  if (r.resourceType === 2) return image.topic(r.resourceName)?.configs;
  return image.brokerConfigs.get(r.resourceName) ?? {};
}

async function alterConfigs<R extends ConfigResource>(
  ctx: RequestContext,
  resources: readonly R[],
  validateOnly: boolean,
  plan: (image: MetadataImage, r: R) => MetadataRecord[],
): Promise<ResourceResult[]> {
  const key = (r: ConfigResource) => `${r.resourceType}:${r.resourceName}`;
  const counts = new Map<string, number>();
  for (const r of resources) counts.set(key(r), (counts.get(key(r)) ?? 0) + 1);
  const results: ResourceResult[] = [];
  for (const r of resources) {
    const base = { resourceType: r.resourceType, resourceName: r.resourceName };
    if (counts.get(key(r))! > 1) {
      results.push({
        ...base,
        errorCode: ErrorCode.INVALID_REQUEST,
        errorMessage: "Duplicate resource in request.",
      });
      continue;
    }
    try {
      await ctx.services.metadata.propose((image) => {
        const records = plan(image, r);
        return { records: validateOnly ? [] : records, result: undefined };
      });
      results.push({ ...base, errorCode: ErrorCode.NONE, errorMessage: null });
    } catch (err) {
      if (!(err instanceof TidelogError)) throw err;
      results.push({ ...base, errorCode: err.code, errorMessage: err.message });
    }
  }
  return results;
}

const isNotController = (r: { responses: { errorCode: number }[] }) =>
  r.responses.some((x) => x.errorCode === ErrorCode.NOT_CONTROLLER);

export const alterConfigsHandler: ApiHandler<typeof ApiKey.AlterConfigs> = {
  apiKey: ApiKey.AlterConfigs,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, req: AlterConfigsRequest) {
    const forwarded = await forwardToController(
      ctx,
      ApiKey.AlterConfigs,
      req,
      isNotController,
      (image, response) =>
        req.validateOnly || response.responses.every((res, i) => {
          const r = req.resources[i];
          if (res.errorCode !== ErrorCode.NONE || !r) return true;
          const now = overridesOf(image, r) ?? {};
          return Object.keys(now).length === r.configs.length &&
            r.configs.every((c) => c.name in now);
        }),
    );
    if (forwarded) return respond(forwarded);
    const responses = await alterConfigs(
      ctx,
      req.resources,
      req.validateOnly,
      (image, r) => planAlterConfigs(image, r, r.configs),
    );
    return respond({ responses });
  },
  errorResponse: (req, code) => ({
    responses: req.resources.map((r) => ({
      resourceType: r.resourceType,
      resourceName: r.resourceName,
      errorCode: code,
      errorMessage: null,
    })),
  }),
};

export const incrementalAlterConfigsHandler: ApiHandler<typeof ApiKey.IncrementalAlterConfigs> = {
  apiKey: ApiKey.IncrementalAlterConfigs,
  minVersion: 0,
  maxVersion: 1,
  async handle(ctx, req: IncrementalAlterConfigsRequest) {
    const forwarded = await forwardToController(
      ctx,
      ApiKey.IncrementalAlterConfigs,
      req,
      isNotController,
      (image, response) =>
        req.validateOnly || response.responses.every((res, i) => {
          const r = req.resources[i];
          if (res.errorCode !== ErrorCode.NONE || !r) return true;
          const now = overridesOf(image, r) ?? {};
          return r.configs.every((c) =>
            c.configOperation === AlterConfigOp.DELETE ? !(c.name in now) : c.name in now
          );
        }),
    );
    if (forwarded) return respond(forwarded);
    const responses = await alterConfigs(
      ctx,
      req.resources,
      req.validateOnly,
      (image, r) =>
        planIncrementalAlterConfigs(
          image,
          r,
          r.configs.map((c) => ({ name: c.name, op: c.configOperation, value: c.value })),
        ),
    );
    return respond({ responses });
  },
  errorResponse: (req, code) => ({
    responses: req.resources.map((r) => ({
      resourceType: r.resourceType,
      resourceName: r.resourceName,
      errorCode: code,
      errorMessage: null,
    })),
  }),
};
