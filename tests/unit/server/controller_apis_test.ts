/** The controller's BrokerHeartbeat handler and the connections it watches. */
import assert from "node:assert/strict";
import type { BrokerHeartbeatRequest } from "../../../lib/protocol/mod.ts";
import type { RequestContext } from "../../../lib/server/handler.ts";
import { brokerHeartbeatHandler } from "../../../lib/server/handlers/controller_apis.ts";
import type { BrokerServices } from "../../../lib/server/services.ts";

class FakeConnection {
  readonly hooks: (() => void)[] = [];
  onClose(hook: () => void): void {
    this.hooks.push(hook);
  }
  close(): void {
    for (const h of this.hooks.splice(0)) h();
  }
}

Deno.test("BrokerHeartbeat: only the close of a broker's latest heartbeat connection counts as its loss", async () => {
  const lost: number[] = [];
  const controller = {
    heartbeat: () =>
      Promise.resolve({
        errorCode: 0,
        isCaughtUp: true,
        isFenced: false,
        shouldShutDown: false,
        inControlledShutdown: false,
      }),
    connectionLost: (id: number) => lost.push(id),
  };
  const ctx = (connection: FakeConnection) =>
    ({
      services: { controller } as unknown as BrokerServices,
      connection,
    }) as unknown as RequestContext;
  const req = {
    brokerId: 3,
    brokerEpoch: 5n,
    currentMetadataOffset: 10n,
    wantFence: false,
    wantShutDown: false,
  } as BrokerHeartbeatRequest;
  const old = new FakeConnection();
  const current = new FakeConnection();
  await brokerHeartbeatHandler.handle(ctx(old), req);
  // The broker timed out on `old` and heartbeats on a new connection; `old` closes later
  // (sim seed 554: once a heartbeat the controller held on it was answered).
  await brokerHeartbeatHandler.handle(ctx(current), req);
  old.close();
  assert.deepEqual(lost, [], "a replaced connection closing says nothing");
  current.close();
  assert.deepEqual(lost, [3], "the current one closing means the broker may be gone");
});
