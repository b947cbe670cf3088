/** ProducerIdManager and planProducerIdBlock: ids in blocks, never repeated. */
import assert from "node:assert/strict";
import { MetadataImage } from "../../../lib/metadata/mod.ts";
import { planProducerIdBlock, ProducerIdManager } from "../../../lib/producer/mod.ts";

Deno.test("planProducerIdBlock() reserves the block after the image's next id", () => {
  const first = planProducerIdBlock(MetadataImage.EMPTY, { brokerId: 1 });
  assert.deepEqual(first, {
    records: [{ type: "ProducerIds", brokerId: 1, nextProducerId: 1000 }],
    result: 0,
  });
  const image = MetadataImage.EMPTY.applyAll(first.records);
  assert.equal(image.nextProducerId, 1000);
  assert.equal(planProducerIdBlock(image, { brokerId: 2, blockSize: 10 }).result, 1000);
  assert.throws(() => planProducerIdBlock(image, { brokerId: 1, blockSize: 0 }), RangeError);
  assert.throws(() => image.apply({ type: "ProducerIds", brokerId: 1, nextProducerId: 1000 }));
});

Deno.test("ProducerIdManager hands out each id once, reserving one block at a time", async () => {
  let image = MetadataImage.EMPTY;
  let reservations = 0;
  const reserve = async (blockSize: number) => {
    reservations++;
    await new Promise((r) => setTimeout(r, 1));
    const { records, result } = planProducerIdBlock(image, { brokerId: 1, blockSize });
    image = image.applyAll(records);
    return result;
  };
  const manager = new ProducerIdManager(reserve, { blockSize: 4 });
  // Concurrent callers while no block is reserved share one reservation.
  const ids = await Promise.all(Array.from({ length: 10 }, () => manager.generateProducerId()));
  assert.deepEqual(ids.sort((a, b) => Number(a - b)), [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]);
  assert.equal(reservations, 3);
  // A restarted node (new manager, same image) skips the rest of the old block.
  const restarted = new ProducerIdManager(reserve, { blockSize: 4 });
  assert.equal(await restarted.generateProducerId(), 12n);
});
