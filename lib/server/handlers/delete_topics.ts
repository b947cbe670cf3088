/**
 * DeleteTopics (key 20): v0-6.
 *
 * Behaviour: removes each named topic through the controller; its partition folders are
 * deleted before the response is sent. The internal __consumer_offsets topic cannot be
 * deleted (INVALID_TOPIC_EXCEPTION). Unknown names get UNKNOWN_TOPIC_OR_PARTITION,
 * unknown ids UNKNOWN_TOPIC_ID; a name and an id for different topics get
 * INVALID_REQUEST.
 *
 * Version notes: v0-5 name topics in `topicNames`; v6 uses `topics` with a name or an id.
 */
import { isInternalTopic } from "../topics.ts";
import { planDeleteTopic, type TopicImage } from "../../metadata/mod.ts";
import { ApiKey, type DeleteTopicsRequest, ErrorCode, ZERO_UUID } from "../../protocol/mod.ts";
import { TidelogError } from "../../util/errors.ts";
import { getLogger } from "../../util/log.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { forwardToController } from "../forward.ts";

const log = getLogger(["tidelog", "server"]);

function requested(
  req: DeleteTopicsRequest,
  version: number,
): { name: string | null; topicId: string }[] {
  return version >= 6 ? req.topics : req.topicNames.map((name) => ({ name, topicId: ZERO_UUID }));
}

export const deleteTopicsHandler: ApiHandler<typeof ApiKey.DeleteTopics> = {
  apiKey: ApiKey.DeleteTopics,
  minVersion: 0,
  maxVersion: 6,
  async handle(ctx, req: DeleteTopicsRequest) {
    const version = ctx.header.apiVersion;
    const forwarded = await forwardToController(
      ctx,
      ApiKey.DeleteTopics,
      req,
      (r) => r.responses.some((t) => t.errorCode === ErrorCode.NOT_CONTROLLER),
      (image, r) =>
        r.responses.every((t) =>
          t.errorCode !== ErrorCode.NONE || !image.topicsById.has(t.topicId) &&
            (t.name === null || image.topic(t.name) === undefined)
        ),
    );
    if (forwarded) return respond(forwarded);
    const responses = [];
    for (const wanted of requested(req, version)) {
      const byId = wanted.topicId !== ZERO_UUID;
      const entry = { name: wanted.name, topicId: wanted.topicId };
      try {
        const name = await ctx.services.metadata.propose((image) => {
          let topic: TopicImage | undefined;
          if (byId) {
            topic = image.topicsById.get(wanted.topicId);
            if (!topic) {
              throw new TidelogError(
                ErrorCode.UNKNOWN_TOPIC_ID,
                `Topic id ${wanted.topicId} does not exist`,
              );
            }
            if (wanted.name !== null && wanted.name !== topic.name) {
              throw new TidelogError(
                ErrorCode.INVALID_REQUEST,
                `Topic id ${wanted.topicId} is not topic ${wanted.name}`,
              );
            }
          } else {
            topic = image.topic(wanted.name ?? "");
            if (!topic) {
              throw new TidelogError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                "This server does not host this topic-partition.",
              );
            }
          }
          if (isInternalTopic(topic.name)) {
            throw new TidelogError(
              ErrorCode.INVALID_TOPIC_EXCEPTION,
              `The internal topic ${topic.name} cannot be deleted`,
            );
          }
          log.info("Deleting topic {topic} ({id})", { topic: topic.name, id: topic.topicId });
          return { records: planDeleteTopic(image, topic), result: topic };
        });
        responses.push({
          name: name.name,
          topicId: name.topicId,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
        });
      } catch (err) {
        if (!(err instanceof TidelogError)) throw err;
        responses.push({ ...entry, errorCode: err.code, errorMessage: err.message });
      }
    }
    return respond({ responses });
  },
  errorResponse: (req, code, version) => ({
    responses: requested(req, version).map((t) => ({
      name: t.name,
      topicId: t.topicId,
      errorCode: code,
    })),
  }),
};
