import assert from "node:assert/strict";
import {
  ControllerChannel,
  type ControllerService,
  type RaftMetadataStore,
} from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { TidelogError } from "../../../lib/util/errors.ts";

Deno.test("ControllerChannel: a local call whose proposal waits for a lost quorum ends at its deadline", async () => {
  // This node is the controller, but its proposal can never commit (its peers are gone):
  // the heartbeat loop waiting for the answer must get a failure, or the broker goes
  // silent and its own controller fences it once the quorum is back (sim seed 788).
  const store = { isController: () => true, controllerId: () => 1 } as unknown as RaftMetadataStore;
  const controller = {
    heartbeat: () => new Promise(() => {}),
  } as unknown as ControllerService;
  const channel = new ControllerChannel({ nodeId: 1, store, controller });
  try {
    await assert.rejects(
      channel.heartbeat({
        brokerId: 1,
        brokerEpoch: 5,
        currentMetadataOffset: 10,
        wantFence: false,
        wantShutDown: false,
      }, 100),
      (err: unknown) => {
        // A timeout, as for a remote controller that does not answer.
        return err instanceof Error &&
          (!(err instanceof TidelogError) || err.code === ErrorCode.REQUEST_TIMED_OUT);
      },
    );
  } finally {
    channel.close();
  }
});
