/** The real program: exit codes and messages for bad flags and a foreign data directory. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

async function tidelog(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("tidelog: a bad flag prints one line and exits with code 2", async () => {
  const r = await tidelog(["serve", "--kafka-addr", "nonsense"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.match(r.stderr, /^tidelog: --kafka-addr: expected HOST:PORT/);
  const unknown = await tidelog(["serve", "--bogus", "1"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr.trim().split("\n").length, 1);
});

Deno.test("tidelog: --help prints usage and exits 0", async () => {
  const r = await tidelog(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: tidelog serve/);
  assert.match(r.stdout, /--data-dir/);
});

Deno.test("tidelog: a data directory of another node id is refused", async () => {
  await using dir = await tempDir();
  const node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
  assert.equal((await node.stop()).code, 0);
  const r = await tidelog([
    "serve",
    "--node-id",
    "2",
    "--kafka-addr",
    "127.0.0.1:0",
    "--data-dir",
    nodeDir(dir.path),
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /belongs to node 1, not node 2/);
});

Deno.test("tidelog: a data directory of another cluster is refused", async () => {
  await using dir = await tempDir();
  const node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
  assert.equal((await node.stop()).code, 0);
  // The directory's meta.json names another cluster than its metadata log does, as when
  // a data directory is copied into the wrong cluster.
  const metaPath = `${nodeDir(dir.path)}/meta.json`;
  const meta = JSON.parse(await Deno.readTextFile(metaPath));
  await Deno.writeTextFile(metaPath, JSON.stringify({ ...meta, clusterId: "another-cluster" }));
  const r = await tidelog([
    "serve",
    "--kafka-addr",
    "127.0.0.1:0",
    "--data-dir",
    nodeDir(dir.path),
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is for cluster another-cluster, but the metadata quorum says/);
});

Deno.test("tidelog: bad cluster flags print one line and exit with code 2", async () => {
  for (
    const [args, message] of [
      [["--peers", "1@127.0.0.1:9192,1@127.0.0.1:9193"], /node 1 is listed twice/],
      [["--peers", "2@127.0.0.1:9193,3@127.0.0.1:9194"], /node 1 is not among the voters/],
      [["--peers", "1@127.0.0.1"], /expected HOST:PORT/],
      [["--raft-addr", "nope"], /--raft-addr: expected HOST:PORT/],
    ] as const
  ) {
    const r = await tidelog(["serve", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
});
