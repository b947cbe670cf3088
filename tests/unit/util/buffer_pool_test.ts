import assert from "node:assert/strict";
import { BufferPool, POOL_MIN_BYTES } from "../../../lib/util/buffer_pool.ts";

Deno.test("BufferPool reuses released buffers of the same size class", () => {
  const pool = new BufferPool();
  const a = pool.acquire(POOL_MIN_BYTES + 1);
  assert.equal(a.length, POOL_MIN_BYTES + 1);
  assert.equal(a.buffer.byteLength, POOL_MIN_BYTES * 2);
  a.fill(7);
  pool.release(a);
  assert.equal(pool.pooledBytes, POOL_MIN_BYTES * 2);
  const b = pool.acquire(POOL_MIN_BYTES * 2);
  assert.equal(b.buffer, a.buffer, "the same memory again");
  assert.equal(b[0], 7, "not zeroed: the caller overwrites it");
  assert.equal(pool.pooledBytes, 0);
  // Another size class gets its own buffer.
  const c = pool.acquire(POOL_MIN_BYTES * 3);
  assert.notEqual(c.buffer, a.buffer);
});

Deno.test("BufferPool ignores small, foreign and twice-released arrays, and caps what it keeps", () => {
  const pool = new BufferPool(POOL_MIN_BYTES * 2);
  const small = pool.acquire(100);
  assert.equal(small.length, 100);
  pool.release(small);
  pool.release(new Uint8Array(POOL_MIN_BYTES * 2));
  assert.equal(pool.pooledBytes, 0);
  const a = pool.acquire(POOL_MIN_BYTES * 2);
  const b = pool.acquire(POOL_MIN_BYTES * 2);
  pool.release(a);
  pool.release(a);
  assert.equal(pool.pooledBytes, POOL_MIN_BYTES * 2);
  pool.release(b); // over the cap: left to the garbage collector
  assert.equal(pool.pooledBytes, POOL_MIN_BYTES * 2);
  const again = pool.acquire(POOL_MIN_BYTES * 2);
  const fresh = pool.acquire(POOL_MIN_BYTES * 2);
  assert.notEqual(again.buffer, fresh.buffer, "one buffer is never lent twice");
});
