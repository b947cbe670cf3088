/**
 * Seeded pseudo-random source (xoshiro128**), injected wherever behaviour depends on
 * chance (election timeouts, simulated faults) so that a seed replays a run exactly.
 */
export class Random {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** Creates a source from a 32-bit seed (spread with splitmix32). */
  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
  }

  /**
   * A source whose whole 128-bit state comes from the OS's cryptographic generator, for
   * production: ids drawn from it (cluster, topic, incarnation) are as unlikely to collide
   * across processes as Kafka's, where a 32-bit seed would not be.
   */
  static fromCrypto(): Random {
    const r = new Random(0);
    const words = crypto.getRandomValues(new Uint32Array(4));
    // xoshiro's state must not be all zero.
    if (words.every((w) => w === 0)) words[0] = 1;
    [r.#s0, r.#s1, r.#s2, r.#s3] = [words[0]!, words[1]!, words[2]!, words[3]!];
    return r;
  }

  /** Next unsigned 32-bit value. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3 >>> 0, 11);
    this.#s0 >>>= 0;
    this.#s1 >>>= 0;
    this.#s2 >>>= 0;
    return result;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Cannot pick from an empty array");
    return items[this.int(0, items.length - 1)]!;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
