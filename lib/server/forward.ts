/**
 * Admin requests reach the controller (DESIGN §7): a node that is not the controller
 * sends the request on, as it came, and answers with the controller's response once the
 * change is committed; it then waits briefly until its own image shows the change, so
 * that a client asking this node next sees what it just did.
 */
import { BecameControllerError, type MetadataImage } from "../metadata/mod.ts";
import type { DeepPartial, RequestTypes, ResponseTypes } from "../protocol/mod.ts";
import type { RequestContext } from "./handler.ts";

type Key = keyof RequestTypes & keyof ResponseTypes;

/** How long a forwarding node waits for its own image to show the change. */
const LOCAL_VISIBILITY_MS = 3000;

/**
 * The controller's response to `request` when this node is not the controller, else null
 * (the caller handles it). `notController` tells a response from a node that had just
 * lost the controller role (the request is then sent again to the new one);
 * `visible(image)`, when given, is awaited (bounded) before answering.
 */
export async function forwardToController<K extends Key>(
  ctx: RequestContext,
  apiKey: K,
  request: RequestTypes[K],
  notController: (response: ResponseTypes[K]) => boolean,
  visible?: (image: MetadataImage, response: ResponseTypes[K]) => boolean,
): Promise<ResponseTypes[K] | null> {
  const { services } = ctx;
  if (services.metadata.isController()) return null;
  let response: ResponseTypes[K];
  try {
    response = await services.controllerChannel.forward(
      apiKey,
      ctx.header.apiVersion,
      request as DeepPartial<RequestTypes[K]>,
      notController,
    );
  } catch (err) {
    if (err instanceof BecameControllerError) return null;
    throw err;
  }
  if (visible) {
    await services.metadata.waitForImage((image) => visible(image, response), LOCAL_VISIBILITY_MS)
      .catch((err) =>
        ctx.log.info("Forwarded change not visible here yet: {error}", { error: err })
      );
  }
  return response;
}
