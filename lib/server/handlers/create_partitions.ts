/**
 * CreatePartitions (key 37): v0-3.
 *
 * Behaviour: grows each topic to `count` partitions through the controller, with
 * optional manual assignments for the new ones; INVALID_PARTITIONS when the count does
 * not grow, UNKNOWN_TOPIC_OR_PARTITION for a missing topic, INVALID_REQUEST for a topic
 * named twice. `validateOnly` checks without changing anything.
 *
 * Version notes: none; v2+ is flexible.
 */
import { planCreatePartitions } from "../../metadata/mod.ts";
import { ApiKey, type CreatePartitionsRequest, ErrorCode } from "../../protocol/mod.ts";
import { TidelogError } from "../../util/errors.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { forwardToController } from "../forward.ts";
import { duplicateNames } from "../topics.ts";

export const createPartitionsHandler: ApiHandler<typeof ApiKey.CreatePartitions> = {
  apiKey: ApiKey.CreatePartitions,
  minVersion: 0,
  maxVersion: 3,
  async handle(ctx, req: CreatePartitionsRequest) {
    const forwarded = await forwardToController(
      ctx,
      ApiKey.CreatePartitions,
      req,
      (r) => r.results.some((t) => t.errorCode === ErrorCode.NOT_CONTROLLER),
      (image, r) =>
        req.validateOnly || r.results.every((t) =>
          t.errorCode !== ErrorCode.NONE ||
          (image.topic(t.name)?.partitions.length ?? 0) >=
            (req.topics.find((x) => x.name === t.name)?.count ?? 0)
        ),
    );
    if (forwarded) return respond(forwarded);
    const duplicates = duplicateNames(req.topics.map((t) => t.name));
    const results = [];
    for (const t of req.topics) {
      if (duplicates.has(t.name)) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: "Duplicate topic in request.",
        });
        continue;
      }
      try {
        await ctx.services.metadata.propose((image) => {
          const records = planCreatePartitions(
            image,
            t.name,
            t.count,
            t.assignments?.map((a) => a.brokerIds) ?? null,
            ctx.services.controllerContext(),
          );
          return { records: req.validateOnly ? [] : records, result: undefined };
        });
        results.push({ name: t.name, errorCode: ErrorCode.NONE, errorMessage: null });
      } catch (err) {
        if (!(err instanceof TidelogError)) throw err;
        // Kafka's controller gives no message for a missing topic.
        const message = err.code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ? null : err.message;
        results.push({ name: t.name, errorCode: err.code, errorMessage: message });
      }
    }
    return respond({ results });
  },
  errorResponse: (req, code) => ({
    results: req.topics.map((t) => ({ name: t.name, errorCode: code, errorMessage: null })),
  }),
};
