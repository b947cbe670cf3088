/**
 * The machine's raw rates, measured in the same run as the broker figures (DESIGN §12):
 * framed loopback TCP between two tasks, and append + fdatasync with 1 MiB group commits.
 */

/** MB/s of 1 MiB frames written over a loopback TCP connection and read by a peer. */
export async function loopbackTcpMBps(durationMs = 1500): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const reader = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(1 << 20);
    let total = 0;
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      total += n;
    }
    conn.close();
    return total;
  })();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const frame = new Uint8Array(1 << 20);
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    let w = 0;
    while (w < frame.length) w += await conn.write(frame.subarray(w));
  }
  conn.close();
  const total = await reader;
  const seconds = (performance.now() - start) / 1000;
  listener.close();
  return total / 1e6 / seconds;
}

/** MB/s of writeSync appends with one fdatasync per MiB, into a temp file. */
export async function appendFsyncMBps(durationMs = 1500): Promise<number> {
  const path = await Deno.makeTempFile({ prefix: "tidelog-bench-" });
  const file = await Deno.open(path, { write: true });
  const chunk = new Uint8Array(64 * 1024).fill(7);
  let total = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    for (let i = 0; i < 16; i++) {
      let w = 0;
      while (w < chunk.length) w += file.writeSync(chunk.subarray(w));
      total += chunk.length;
    }
    await file.syncData();
  }
  const seconds = (performance.now() - start) / 1000;
  file.close();
  await Deno.remove(path);
  return total / 1e6 / seconds;
}
