/**
 * ListPartitionReassignments (key 46): v0.
 *
 * Behaviour: Tidelog does not reassign replicas yet (AlterPartitionReassignments is not
 * served), so no partition is ever being reassigned: the answer is an empty list, for
 * every topic asked about or for all (null), as Kafka answers with none in progress.
 * Topics that do not exist are left out, as Kafka's controller does.
 *
 * Version notes: v0 is flexible.
 */
import { ApiKey, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

export const listPartitionReassignmentsHandler: ApiHandler<
  typeof ApiKey.ListPartitionReassignments
> = {
  apiKey: ApiKey.ListPartitionReassignments,
  minVersion: 0,
  maxVersion: 0,
  handle: () => respond({ errorCode: ErrorCode.NONE, errorMessage: null, topics: [] }),
  errorResponse: (_req, code) => ({ errorCode: code, errorMessage: null, topics: [] }),
};
