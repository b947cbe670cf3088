/** The simulation's runtime: scheduler, in-memory disk, simulated network. */
import assert from "node:assert/strict";
import { Random } from "../../lib/util/random.ts";
import { Scheduler, SimProcess } from "./_runtime/scheduler.ts";
import { SimDisk } from "./_runtime/sim_disk.ts";
import { SimNetwork } from "./_runtime/sim_net.ts";

async function withSim(
  fn: (s: Scheduler, proc: (name: string) => SimProcess) => Promise<void>,
): Promise<void> {
  const s = new Scheduler();
  try {
    await fn(s, (name) => new SimProcess(s, name));
  } finally {
    s.close();
  }
}

/** Runs `body` as `proc` and the scheduler until it settles. */
async function run<T>(s: Scheduler, proc: SimProcess, body: () => Promise<T>): Promise<T> {
  let out: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  proc.schedule(0, () => {
    body().then((value) => (out = { ok: true, value }), (error) => (out = { ok: false, error }));
  });
  await s.runUntilTrue(() => out !== undefined, 1_000_000);
  if (out === undefined) throw new Error("did not settle");
  if (!out.ok) throw out.error;
  return out.value;
}

Deno.test("scheduler: timers run in time order; a paused process's timers wait for resume; a dead one's never run", async () => {
  await withSim(async (s, proc) => {
    const a = proc("a");
    const b = proc("b");
    const seen: string[] = [];
    a.timers.setTimeout(() => seen.push(`a@${s.now}`), 20);
    b.timers.setTimeout(() => seen.push(`b@${s.now}`), 10);
    const id = a.timers.setInterval(() => seen.push(`ai@${s.now}`), 15);
    await s.runUntil(5);
    b.pause();
    await s.runUntil(40);
    a.timers.clearInterval(id);
    b.resume();
    await s.runUntil(50);
    a.timers.setTimeout(() => seen.push("never"), 1);
    a.kill();
    await s.runUntil(100);
    assert.deepEqual(seen, ["ai@15", "a@20", "ai@30", "b@40"]);
  });
});

Deno.test("sim disk: power loss keeps fsynced data and entries, and at most a prefix of the rest", async () => {
  await withSim(async (s, proc) => {
    for (let seed = 1; seed <= 40; seed++) {
      const disk = new SimDisk("d");
      const p = proc(`p${seed}`);
      const fs = disk.fsFor(p);
      await run(s, p, async () => {
        await fs.mkdir("/data/t", { recursive: true });
        using root = await fs.open("/", { read: true });
        await root.sync();
        using data = await fs.open("/data", { read: true });
        await data.sync();
        using f = await fs.open("/data/t/log", { write: true, create: true });
        f.writeSync(new Uint8Array([1, 2, 3]));
        await f.syncData();
        using dir = await fs.open("/data/t", { read: true });
        await dir.sync();
        f.writeSync(new Uint8Array([4, 5, 6, 7]));
        await fs.writeFile("/data/t/other", new Uint8Array([9]));
      });
      p.kill();
      disk.powerLoss(new Random(seed));
      const q = proc(`q${seed}`);
      const fs2 = disk.fsFor(q);
      const log = fs2.readFileSync("/data/t/log");
      assert.deepEqual([...log.subarray(0, 3)], [1, 2, 3], `seed ${seed}`);
      assert.ok(log.length <= 7, `seed ${seed}`);
      assert.deepEqual([...log.subarray(3)], [4, 5, 6, 7].slice(0, log.length - 3));
      const names = [...fs2.readDirSync("/data/t")].map((e) => e.name);
      assert.ok(names.includes("log"));
    }
  });
});

Deno.test("sim disk: a kill keeps everything (the page cache survives the process)", async () => {
  await withSim(async (s, proc) => {
    const disk = new SimDisk("d");
    const p = proc("p");
    const fs = disk.fsFor(p);
    await run(s, p, async () => {
      await fs.mkdir("/x", { recursive: true });
      await fs.writeTextFile("/x/a", "hello");
    });
    p.kill();
    assert.equal(disk.fsFor(proc("q")).readTextFileSync("/x/a"), "hello");
  });
});

Deno.test("sim disk: a file created and fsynced but whose directory was not is gone after power loss", async () => {
  await withSim(async (s, proc) => {
    const disk = new SimDisk("d");
    const p = proc("p");
    const fs = disk.fsFor(p);
    await run(s, p, async () => {
      using f = await fs.open("/new", { write: true, create: true });
      f.writeSync(new Uint8Array([1]));
      await f.syncData();
    });
    p.kill();
    // Random(0) keeps no pending directory change.
    let kept = 0;
    for (let seed = 0; seed < 20; seed++) {
      const copy = new SimDisk("c");
      const cp = proc(`c${seed}`);
      const cfs = copy.fsFor(cp);
      await run(s, cp, async () => {
        using f = await cfs.open("/new", { write: true, create: true });
        f.writeSync(new Uint8Array([1]));
        await f.syncData();
      });
      cp.kill();
      copy.powerLoss(new Random(seed));
      try {
        copy.fsFor(proc(`r${seed}`)).statSync("/new");
        kept++;
      } catch (err) {
        assert.ok(err instanceof Deno.errors.NotFound);
      }
    }
    assert.ok(kept > 0 && kept < 20, `kept in ${kept} of 20 runs`);
  });
});

Deno.test("sim disk: a rename is atomic across power loss; rename + dir fsync is durable", async () => {
  await withSim(async (s, proc) => {
    for (let seed = 0; seed < 20; seed++) {
      const disk = new SimDisk("d");
      const p = proc(`p${seed}`);
      const fs = disk.fsFor(p);
      await run(s, p, async () => {
        await fs.writeTextFile("/cp", "old");
        using f0 = await fs.open("/cp", { write: true });
        await f0.syncData();
        using root = await fs.open("/", { read: true });
        await root.sync();
        await fs.writeTextFile("/cp.tmp", "new");
        using f = await fs.open("/cp.tmp", { write: true });
        await f.syncData();
        await fs.rename("/cp.tmp", "/cp");
      });
      p.kill();
      disk.powerLoss(new Random(seed));
      const text = disk.fsFor(proc(`q${seed}`)).readTextFileSync("/cp");
      assert.ok(text === "old" || text === "new", text);
    }
  });
});

Deno.test("sim net: bytes arrive in order; a cut holds them until it heals; kill gives the peer EOF; connect to nothing is refused", async () => {
  await withSim(async (s, proc) => {
    const net = new SimNetwork(s, new Random(1));
    const ha = net.addHost("a");
    const hb = net.addHost("b");
    const server = proc("server");
    const client = proc("client");
    const listener = hb.netFor(server).listen({ hostname: "b", port: 9092 });
    const received: number[] = [];
    let eof = false;
    server.schedule(0, async () => {
      const c = await listener.accept();
      const buf = new Uint8Array(16);
      for (;;) {
        const n = await c.read(buf);
        if (n === null) {
          eof = true;
          return;
        }
        received.push(...buf.subarray(0, n));
      }
    });
    const conn = await run(
      s,
      client,
      () => ha.netFor(client).connect({ hostname: "b", port: 9092 }),
    );
    await run(s, client, () => conn.write(new Uint8Array([1, 2])));
    await s.runUntil(s.now + 10);
    assert.deepEqual(received, [1, 2]);
    net.cut("a", "b");
    await run(s, client, () => conn.write(new Uint8Array([3])));
    await s.runUntil(s.now + 5000);
    assert.deepEqual(received, [1, 2]);
    net.heal("a", "b");
    const healedAt = s.now;
    await s.runUntilTrue(() => received.length === 3, 200_000);
    assert.deepEqual(received, [1, 2, 3]);
    assert.ok(s.now - healedAt > 0, "resent at the backed-off timeout");
    client.kill();
    await s.runUntilTrue(() => eof, 10_000);
    assert.ok(eof);
    const other = proc("other");
    await assert.rejects(
      () => run(s, other, () => ha.netFor(other).connect({ hostname: "b", port: 1 })),
      Deno.errors.ConnectionRefused,
    );
  });
});

Deno.test("sim net: a connect across a cut retries its SYN and completes after the heal, or times out", async () => {
  await withSim(async (s, proc) => {
    const net = new SimNetwork(s, new Random(2));
    const ha = net.addHost("a");
    const hb = net.addHost("b");
    const server = proc("server");
    hb.netFor(server).listen({ hostname: "b", port: 7 });
    net.cut("b", "a");
    const c = proc("c");
    let connected = false;
    c.schedule(0, () => {
      ha.netFor(c).connect({ hostname: "b", port: 7 }).then(() => (connected = true));
    });
    await s.runUntil(2500);
    assert.equal(connected, false);
    net.healAll();
    await s.runUntilTrue(() => connected, 10_000);
    assert.ok(connected);
    assert.ok(s.now >= 3000, `${s.now}`);
    net.cut("a", "b");
    await assert.rejects(
      () => run(s, c, () => ha.netFor(c).connect({ hostname: "b", port: 7 })),
      Deno.errors.TimedOut,
    );
  });
});
