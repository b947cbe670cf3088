/**
 * Hands out producer ids for InitProducerId. Ids come in blocks reserved through the
 * metadata log (a `ProducerIds` record moves the cluster-wide next id past the block), so
 * an id is never given twice, even across restarts: ids of a block that a node did not
 * use before it stopped are simply skipped (Kafka's ProducerIdManager).
 */
import type { MetadataImage, MetadataRecord } from "../metadata/mod.ts";

/** Ids reserved per metadata record (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

/**
 * Plans reserving the next block of `blockSize` ids for `brokerId`, for
 * `RaftMetadataStore.propose`: the result is the block's first id.
 */
export function planProducerIdBlock(
  image: MetadataImage,
  options: { brokerId: number; blockSize?: number },
): { records: MetadataRecord[]; result: number } {
  const blockSize = options.blockSize ?? PRODUCER_ID_BLOCK_SIZE;
  if (!(Number.isSafeInteger(blockSize) && blockSize > 0)) {
    throw new RangeError(`Cannot reserve producer ids: block size ${blockSize} is not positive`);
  }
  const first = image.nextProducerId;
  return {
    records: [{
      type: "ProducerIds",
      brokerId: options.brokerId,
      nextProducerId: first + blockSize,
    }],
    result: first,
  };
}

/**
 * Producer ids from reserved blocks. `reserveBlock` persists a reservation and resolves
 * with the first id of a block of `blockSize` ids; it is called again only when the
 * current block is used up, and never twice at once.
 */
export class ProducerIdManager {
  readonly #reserveBlock: (blockSize: number) => Promise<number>;
  readonly #blockSize: number;
  /** The current block is [#next, #end); empty until the first reservation. */
  #next = 0;
  #end = 0;
  #reserving: Promise<void> | null = null;

  constructor(
    reserveBlock: (blockSize: number) => Promise<number>,
    options: { blockSize?: number } = {},
  ) {
    this.#reserveBlock = reserveBlock;
    this.#blockSize = options.blockSize ?? PRODUCER_ID_BLOCK_SIZE;
  }

  /** The next unused producer id (reserving a new block first if needed). */
  async generateProducerId(): Promise<bigint> {
    while (this.#next >= this.#end) {
      this.#reserving ??= this.#reserve().finally(() => {
        this.#reserving = null;
      });
      await this.#reserving;
    }
    return BigInt(this.#next++);
  }

  async #reserve(): Promise<void> {
    const first = await this.#reserveBlock(this.#blockSize);
    this.#next = first;
    this.#end = first + this.#blockSize;
  }
}
