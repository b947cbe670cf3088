/**
 * Codec, TcpTransport and RaftDriver on real sockets and files (one process).
 */
import assert from "node:assert/strict";
import { decodeMessage, encodeMessage } from "../../lib/raft/codec.ts";
import { EntryType, makeMessage, type Message, MessageType } from "../../lib/raft/messages.ts";
import { TcpTransport } from "../../lib/raft/transport.ts";
import { denoNet, type Network } from "../../lib/runtime/net.ts";
import {
  NotLeaderError,
  RaftClosedError,
  RaftDriver,
  type StateMachine,
} from "../../lib/raft/mod.ts";
import { Random } from "../../lib/util/random.ts";
import { freePorts } from "./_proc.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function sample(i: number, to = 2): Message {
  return makeMessage({
    type: MessageType.App,
    from: to === 1 ? 2 : 1,
    to,
    term: 2 ** 40 + i,
    index: i,
    logTerm: 3,
    commit: 7,
    entries: [
      { index: i + 1, term: 3, type: EntryType.Normal, data: enc.encode(`entry-${i}`) },
      { index: i + 2, term: 3, type: EntryType.ConfChange, data: enc.encode('{"voters":[1]}') },
    ],
  });
}

Deno.test("encodeMessage() and decodeMessage() round-trip; short or padded input is a SyntaxError", () => {
  const m = {
    ...sample(5),
    reject: true,
    force: true,
    rejectHint: 9,
    snapshot: {
      index: 10,
      term: 2,
      conf: { voters: [1, 2], learners: [3], addrs: { 1: "a:1" } },
      data: enc.encode("snap"),
    },
  };
  const bytes = encodeMessage(m);
  assert.deepEqual(decodeMessage(bytes), m);
  for (let cut = 0; cut < bytes.length; cut++) {
    assert.throws(() => decodeMessage(bytes.subarray(0, cut)), SyntaxError);
  }
  assert.throws(() => decodeMessage(new Uint8Array([...bytes, 0])), SyntaxError);
  const huge = encodeMessage(makeMessage({ type: MessageType.App, from: 1, to: 2, term: 1 }));
  huge[huge.length - 1] = 0xff; // entry count claims far more than the input holds
  assert.throws(() => decodeMessage(huge), SyntaxError);
});

function listen(id: number, onMessage: (m: Message) => void, peers = new Map<number, string>()) {
  return TcpTransport.listen({ id, listenAddr: "127.0.0.1:0", peers, onMessage });
}

Deno.test("TcpTransport.send() delivers batches in order over one reused connection", async () => {
  const got: Message[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const b = listen(2, (m) => {
    got.push(m);
    if (got.length === 500) done();
  });
  const a = listen(1, () => {}, new Map([[2, `127.0.0.1:${b.addr.port}`]]));
  try {
    const msgs = Array.from({ length: 500 }, (_, i) => sample(i));
    a.send(msgs.slice(0, 250));
    a.send(msgs.slice(250));
    await all;
    assert.deepEqual(got, msgs);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("TcpTransport: a malformed or oversized frame closes only that connection", async () => {
  const got: Message[] = [];
  let wake!: () => void;
  let arrived = new Promise<void>((r) => (wake = r));
  const b = TcpTransport.listen({
    id: 2,
    listenAddr: "127.0.0.1:0",
    peers: new Map(),
    maxFrameBytes: 1 << 20,
    onMessage: (m) => {
      got.push(m);
      wake();
    },
  });
  const a = listen(1, () => {}, new Map([[2, `127.0.0.1:${b.addr.port}`]]));
  const readEof = async (c: Deno.Conn) => {
    const buf = new Uint8Array(16);
    return await c.read(buf);
  };
  try {
    a.send([sample(1)]);
    await arrived;
    for (
      const bad of [
        new Uint8Array([0, 0, 0, 3, 1, 0xff, 0xff]), // bad payload
        new Uint8Array([0, 0, 0, 2, 9, 0]), // unknown version
        new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1]), // 2 GiB frame: refused before allocation
      ]
    ) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: b.addr.port });
      await c.write(bad);
      assert.equal(await readEof(c), null, "the server closes the bad connection");
      c.close();
    }
    arrived = new Promise<void>((r) => (wake = r));
    a.send([sample(2)]);
    await arrived;
    assert.equal(got.length, 2, "the good connection still works");
  } finally {
    await a.close();
    await b.close();
  }
});

class ListSm implements StateMachine {
  values: string[] = [];
  apply(e: { data: Uint8Array }): void {
    this.values.push(dec.decode(e.data));
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.values));
  }
  restore(data: Uint8Array): void {
    this.values = JSON.parse(dec.decode(data));
  }
}

Deno.test("RaftDriver: a single node elects itself, commits, snapshots, and recovers on restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raft-driver-" });
  const voters = new Map([[1, "127.0.0.1:0"]]);
  try {
    const sm = new ListSm();
    let d = await RaftDriver.start({
      nodeId: 1,
      voters,
      dataDir: dir,
      stateMachine: sm,
      tickMs: 5,
      snapshotEvery: 7,
      random: new Random(1),
    });
    while (d.status().role !== "leader") await new Promise((r) => setTimeout(r, 5));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => d.propose(enc.encode(`v${i}`))),
    );
    assert.deepEqual(results.map((r) => r.index), Array.from({ length: 20 }, (_, i) => i + 2));
    assert.deepEqual(sm.values, Array.from({ length: 20 }, (_, i) => `v${i}`));
    const st = d.status();
    assert.equal(st.commit, 21);
    assert.equal(st.leader, 1);
    assert.ok(st.snapshotIndex >= 14);
    await d.close();
    await assert.rejects(d.propose(enc.encode("late")));
    const sm2 = new ListSm();
    d = await RaftDriver.start({
      nodeId: 1,
      voters,
      dataDir: dir,
      stateMachine: sm2,
      tickMs: 5,
      random: new Random(2),
    });
    while (d.status().role !== "leader") await new Promise((r) => setTimeout(r, 5));
    await d.propose(enc.encode("after"));
    assert.deepEqual(sm2.values, [...sm.values, "after"]);
    await d.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RaftDriver.propose() on a non-leader rejects with NotLeaderError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raft-driver-" });
  try {
    const d = await RaftDriver.start({
      nodeId: 1,
      voters: new Map([[1, "127.0.0.1:0"], [2, "127.0.0.1:1"], [3, "127.0.0.1:1"]]),
      dataDir: dir,
      stateMachine: new ListSm(),
      tickMs: 1000,
    });
    const err = await d.propose(enc.encode("x")).catch((e) => e);
    assert.ok(err instanceof NotLeaderError);
    assert.equal(err.leaderId, undefined);
    assert.throws(() => d.transferLeadership(2), NotLeaderError);
    assert.equal(d.status().role, "follower");
    await d.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RaftDriver.proposeConfChange() adds a learner, then promotes it to voter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raft-driver-" });
  const sm1 = new ListSm();
  const sm2 = new ListSm();
  // Every node must be given the same initial voter addresses (they travel in the conf).
  const [port1] = freePorts(1);
  const d1 = await RaftDriver.start({
    nodeId: 1,
    voters: new Map([[1, `127.0.0.1:${port1}`]]),
    dataDir: `${dir}/1`,
    stateMachine: sm1,
    tickMs: 5,
    random: new Random(3),
  });
  const addr1 = `127.0.0.1:${d1.addr.port}`;
  const d2 = await RaftDriver.start({
    nodeId: 2,
    voters: new Map([[1, addr1]]),
    listenAddr: "127.0.0.1:0",
    dataDir: `${dir}/2`,
    stateMachine: sm2,
    tickMs: 5,
    random: new Random(4),
  });
  const addr2 = `127.0.0.1:${d2.addr.port}`;
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(cond());
  };
  try {
    await until(() => d1.status().role === "leader");
    await d1.propose(enc.encode("before"));
    await d1.proposeConfChange({ type: "addLearner", nodeId: 2, addr: addr2 });
    assert.deepEqual(d1.status().learners, [2]);
    await until(() => sm2.values.length === 1);
    await d1.proposeConfChange({ type: "addVoter", nodeId: 2 });
    await d1.propose(enc.encode("after"));
    assert.deepEqual(d1.status().voters, [1, 2]);
    await until(() => sm2.values.length === 2);
    assert.deepEqual(sm2.values, ["before", "after"]);
    assert.equal(d2.status().role, "follower");
    assert.deepEqual(d2.status().voters, [1, 2]);
    assert.ok((d1.status().match[2] ?? 0) >= 4);
  } finally {
    await d1.close();
    await d2.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TcpTransport abandons a connection attempt after connectTimeoutMs and retries", async () => {
  // As a connect() to a partitioned peer does, the first attempt never completes by itself.
  const attempts: AbortSignal[] = [];
  const net: Network = {
    listen: (o) => denoNet.listen(o),
    connect: (o) => {
      attempts.push(o.signal!);
      if (attempts.length > 1) return denoNet.connect(o);
      return new Promise((_, reject) =>
        o.signal!.addEventListener("abort", () => reject(o.signal!.reason))
      );
    },
  };
  let arrived!: () => void;
  const delivered = new Promise<void>((r) => (arrived = r));
  const b = listen(2, () => arrived());
  const a = TcpTransport.listen({
    id: 1,
    listenAddr: "127.0.0.1:0",
    peers: new Map([[2, `127.0.0.1:${b.addr.port}`]]),
    onMessage: () => {},
    net,
    connectTimeoutMs: 100,
  });
  // What was queued for the hung attempt is dropped with it: keep sending.
  const sending = setInterval(() => a.send([sample(1)]), 20);
  try {
    await delivered;
    assert.ok(attempts.length >= 2, `${attempts.length} connection attempts`);
    assert.ok(attempts[0]!.aborted, "the hung attempt was aborted");
    assert.match(String(attempts[0]!.reason), /No connection within 100 ms/);
  } finally {
    clearInterval(sending);
    await a.close();
    await b.close();
  }
});

Deno.test("TcpTransport replaces a connection whose peer has gone silent, keeps one that answers", async () => {
  const connects = new Map<number, number>();
  const countingNet: Network = {
    listen: (o) => denoNet.listen(o),
    connect: (o) => {
      connects.set(o.port, (connects.get(o.port) ?? 0) + 1);
      return denoNet.connect(o);
    },
  };
  // A peer stuck behind a healed partition: it accepts, but nothing it sends arrives.
  const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const muteConns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of mute) muteConns.push(c);
  })();
  const b = TcpTransport.listen({
    id: 2,
    listenAddr: "127.0.0.1:0",
    peers: new Map(),
    onMessage: () => {},
    silenceMs: 100,
  });
  const a = TcpTransport.listen({
    id: 1,
    listenAddr: "127.0.0.1:0",
    peers: new Map([[2, `127.0.0.1:${b.addr.port}`], [3, `127.0.0.1:${mute.addr.port}`]]),
    onMessage: () => {},
    net: countingNet,
    silenceMs: 100,
  });
  b.setPeer(1, `127.0.0.1:${a.addr.port}`);
  const sending = setInterval(() => {
    a.send([sample(1, 2), sample(2, 3)]);
    b.send([sample(3, 1)]);
  }, 20);
  try {
    for (let i = 0; i < 200 && (connects.get(mute.addr.port) ?? 0) < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok((connects.get(mute.addr.port) ?? 0) >= 3, "the silent peer's connection is replaced");
    assert.equal(connects.get(b.addr.port), 1, "the answering peer keeps its connection");
  } finally {
    clearInterval(sending);
    await a.close();
    await b.close();
    mute.close();
    await accepting.catch(() => {});
    for (const c of muteConns) c.close();
  }
});

Deno.test("TcpTransport.close() returns while a connection attempt is still pending", async () => {
  const t = listen(1, () => {}, new Map([[2, "10.255.255.1:9"]]));
  t.send([sample(1)]);
  await new Promise((r) => setTimeout(r, 20));
  await t.close();
});

Deno.test("RaftDriver: a failing state machine stops the node; proposals reject with RaftClosedError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raft-driver-" });
  try {
    const d = await RaftDriver.start({
      nodeId: 1,
      voters: new Map([[1, "127.0.0.1:0"]]),
      dataDir: dir,
      stateMachine: {
        apply() {
          throw new Error("boom");
        },
        snapshot: () => new Uint8Array(),
        restore() {},
      },
      tickMs: 5,
      random: new Random(5),
    });
    while (d.status().role !== "leader") await new Promise((r) => setTimeout(r, 5));
    const err = await d.propose(enc.encode("x")).catch((e) => e);
    assert.ok(err instanceof RaftClosedError, String(err));
    assert.equal(d.failure?.message, "boom");
    await assert.rejects(d.propose(enc.encode("y")), RaftClosedError);
    await d.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
