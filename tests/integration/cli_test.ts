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
