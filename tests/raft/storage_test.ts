/**
 * DiskStorage: crash recovery. Files are cut and bit-flipped the way a crash in the
 * middle of writes leaves them; on reopen the state must be exactly the last fsynced
 * state (plus, at most, whole entries written after it, never a torn one).
 */
import assert from "node:assert/strict";
import { DiskStorage } from "../../lib/raft/disk_storage.ts";
import { type Entry, EntryType, type Snapshot } from "../../lib/raft/messages.ts";
import { Random } from "../../lib/util/random.ts";

const enc = new TextEncoder();

function entries(from: number, to: number, term: number, size = 20): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({
      index: i,
      term,
      type: EntryType.Normal,
      data: enc.encode(`${i}/${term}`.padEnd(size, "#")),
    });
  }
  return out;
}

function same(a: readonly Entry[], b: readonly Entry[]): void {
  assert.deepEqual(
    a.map((e) => [e.index, e.term, e.type, [...e.data].join(",")]),
    b.map((e) => [e.index, e.term, e.type, [...e.data].join(",")]),
  );
}

async function segFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${dir}/log`)) names.push(e.name);
  return names.sort().map((n) => `${dir}/log/${n}`);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raft-storage-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("DiskStorage.open() recovers exactly what was synced: entries, hard state, segments", async () => {
  await withDir(async (dir) => {
    const s = await DiskStorage.open(dir, { segmentBytes: 256 });
    assert.deepEqual(s.recovered, { hardState: undefined, snapshot: undefined, entries: [] });
    const ents = entries(1, 40, 1);
    s.append(ents);
    s.setHardState({ term: 1, vote: 2, commit: 30 });
    await s.sync();
    s.close();
    assert.ok((await segFiles(dir)).length > 3, "rolled segments");
    const r = await DiskStorage.open(dir, { segmentBytes: 256 });
    same(r.recovered.entries, ents);
    assert.deepEqual(r.recovered.hardState, { term: 1, vote: 2, commit: 30 });
    r.close();
  });
});

Deno.test("DiskStorage.append() truncates a conflicting suffix, durably across reopen", async () => {
  await withDir(async (dir) => {
    const s = await DiskStorage.open(dir, { segmentBytes: 200 });
    s.append(entries(1, 20, 1));
    await s.sync();
    s.append(entries(8, 10, 2));
    await s.sync();
    s.append(entries(11, 12, 3));
    await s.sync();
    s.close();
    const r = await DiskStorage.open(dir, { segmentBytes: 200 });
    same(r.recovered.entries, [...entries(1, 7, 1), ...entries(8, 10, 2), ...entries(11, 12, 3)]);
    r.close();
  });
});

Deno.test("DiskStorage.open() truncates a torn tail at every possible cut point", async () => {
  await withDir(async (dir) => {
    const s = await DiskStorage.open(dir);
    const synced = entries(1, 5, 1);
    s.append(synced);
    await s.sync();
    s.close();
    const [seg] = await segFiles(dir);
    const full = await Deno.readFile(seg!);
    const syncedSize = full.length;
    // Unsynced writes that a crash may cut anywhere.
    const s2 = await DiskStorage.open(dir);
    const extra = entries(6, 8, 1);
    s2.append(extra);
    s2.close();
    const grown = await Deno.readFile(seg!);
    const frame = (grown.length - syncedSize) / 3;
    for (let cut = syncedSize; cut <= grown.length; cut++) {
      await Deno.writeFile(seg!, grown.subarray(0, cut));
      const r = await DiskStorage.open(dir);
      const whole = Math.floor((cut - syncedSize) / frame);
      same(r.recovered.entries, [...synced, ...extra.slice(0, whole)]);
      // The store is usable after recovery: appends continue at the truncation point.
      r.close();
    }
    await Deno.writeFile(seg!, grown.subarray(0, syncedSize + 5));
    const r = await DiskStorage.open(dir);
    same(r.recovered.entries, synced);
    r.append(entries(6, 6, 2));
    await r.sync();
    r.close();
    const r2 = await DiskStorage.open(dir);
    same(r2.recovered.entries, [...synced, ...entries(6, 6, 2)]);
    r2.close();
  });
});

Deno.test("DiskStorage.open() drops a bit-flipped entry and everything after it, later segments too", async () => {
  await withDir(async (dir) => {
    const rng = new Random(42);
    for (let trial = 0; trial < 20; trial++) {
      await Deno.remove(dir, { recursive: true });
      await Deno.mkdir(dir);
      const s = await DiskStorage.open(dir, { segmentBytes: 300 });
      const ents = entries(1, 30, 1);
      s.append(ents);
      await s.sync();
      s.close();
      const files = await segFiles(dir);
      const victim = rng.int(0, files.length - 1);
      const bytes = await Deno.readFile(files[victim]!);
      const pos = rng.int(0, bytes.length - 1);
      bytes[pos]! ^= 1 << rng.int(0, 7);
      await Deno.writeFile(files[victim]!, bytes);
      const r = await DiskStorage.open(dir, { segmentBytes: 300 });
      const got = r.recovered.entries;
      r.close();
      // A strict prefix survives: everything before the damaged frame, nothing after.
      assert.ok(got.length < ents.length, `trial ${trial}: corruption went unnoticed`);
      same(got, ents.slice(0, got.length));
      const firstOfVictim = Number(files[victim]!.split("/").pop()!.slice(0, 20));
      assert.ok(got.length >= firstOfVictim - 1, "entries before the damaged segment survive");
    }
  });
});

Deno.test("DiskStorage.setHardState() survives a torn slot write (two checksummed slots)", async () => {
  await withDir(async (dir) => {
    const s = await DiskStorage.open(dir);
    s.setHardState({ term: 3, vote: 1, commit: 5 });
    await s.sync();
    s.setHardState({ term: 4, vote: 2, commit: 6 });
    await s.sync();
    s.close();
    const path = `${dir}/hardstate`;
    const bytes = await Deno.readFile(path);
    // The newest write (seq 2) is in slot 0; tear it.
    bytes[10]! ^= 0xff;
    await Deno.writeFile(path, bytes);
    const r = await DiskStorage.open(dir);
    assert.deepEqual(r.recovered.hardState, { term: 3, vote: 1, commit: 5 });
    r.setHardState({ term: 5, vote: 3, commit: 7 });
    await r.sync();
    r.close();
    const r2 = await DiskStorage.open(dir);
    assert.deepEqual(r2.recovered.hardState, { term: 5, vote: 3, commit: 7 });
    r2.close();
  });
});

Deno.test("DiskStorage.saveSnapshot() compacts segments; a corrupt snapshot is ignored", async () => {
  await withDir(async (dir) => {
    const s = await DiskStorage.open(dir, { segmentBytes: 200 });
    s.append(entries(1, 40, 1));
    await s.sync();
    const before = (await segFiles(dir)).length;
    const snap: Snapshot = {
      index: 25,
      term: 1,
      conf: { voters: [1, 2, 3], learners: [] },
      data: enc.encode("state@25"),
    };
    await s.saveSnapshot(snap, true);
    assert.ok((await segFiles(dir)).length < before, "old segments removed");
    s.close();
    const r = await DiskStorage.open(dir, { segmentBytes: 200 });
    assert.equal(r.recovered.snapshot?.index, 25);
    assert.deepEqual(r.recovered.snapshot?.data, enc.encode("state@25"));
    same(r.recovered.entries, entries(26, 40, 1));
    // A snapshot installed from a leader replaces the whole log.
    await r.saveSnapshot({ ...snap, index: 60, term: 3, data: enc.encode("state@60") }, false);
    r.append(entries(61, 62, 3));
    await r.sync();
    r.close();
    const r2 = await DiskStorage.open(dir, { segmentBytes: 200 });
    assert.equal(r2.recovered.snapshot?.index, 60);
    same(r2.recovered.entries, entries(61, 62, 3));
    r2.close();
    const file = `${dir}/snapshot-60-3`;
    const bytes = await Deno.readFile(file);
    bytes[bytes.length - 1]! ^= 1;
    await Deno.writeFile(file, bytes);
    const r3 = await DiskStorage.open(dir, { segmentBytes: 200 });
    assert.equal(r3.recovered.snapshot, undefined, "corrupt snapshot ignored");
    assert.deepEqual(r3.recovered.entries, [], "a log that does not start at 1 is unusable alone");
    r3.close();
  });
});

Deno.test("DiskStorage: random crash points leave exactly the synced state plus whole later entries", async () => {
  await withDir(async (dir) => {
    const rng = new Random(7);
    for (let trial = 0; trial < 15; trial++) {
      await Deno.remove(dir, { recursive: true });
      await Deno.mkdir(dir);
      let s = await DiskStorage.open(dir, { segmentBytes: 400 });
      let expected: Entry[] = [];
      let term = 1;
      for (let round = 0; round < 5; round++) {
        // Durable writes, sometimes truncating a suffix first.
        const from = expected.length > 0 && rng.chance(0.3)
          ? rng.int(Math.max(1, expected.length - 5), expected.length)
          : expected.length + 1;
        term++;
        const add = entries(from, from + rng.int(1, 10), term, rng.int(1, 60));
        s.append(add);
        s.setHardState({ term, vote: 1, commit: from - 1 });
        await s.sync();
        expected = [...expected.slice(0, from - 1), ...add];
      }
      // Unsynced writes, then a crash that tears them at a random byte.
      const tail = entries(expected.length + 1, expected.length + 5, term, 30);
      const sizes = new Map<string, number>();
      for (const f of await segFiles(dir)) sizes.set(f, (await Deno.stat(f)).size);
      s.append(tail);
      s.close();
      for (const f of await segFiles(dir)) {
        const size = (await Deno.stat(f)).size;
        const base = sizes.get(f) ?? 0;
        if (size > base) {
          const cut = rng.int(base, size);
          const bytes = await Deno.readFile(f);
          await Deno.writeFile(f, bytes.subarray(0, cut));
        }
      }
      s = await DiskStorage.open(dir, { segmentBytes: 400 });
      const got = s.recovered.entries;
      s.close();
      assert.ok(got.length >= expected.length, `trial ${trial}: lost synced entries`);
      same(got, [...expected, ...tail].slice(0, got.length));
    }
  });
});
