/**
 * The node's code reaches the clock, timers, disk, network and randomness only through
 * lib/runtime (so the whole-cluster simulation runs it on virtual time, an in-memory disk
 * and a simulated network, replayably). This test reads every file under lib/ and fails
 * on a direct call outside the few files allowed to make them.
 */
import assert from "node:assert/strict";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = fileURLToPath(new URL("../../../lib/", import.meta.url));

/** Files that are the real implementations, or run only as command-line tools. */
const ALLOWED = new Set([
  "runtime/fs.ts",
  "runtime/net.ts",
  "runtime/timers.ts",
  "util/clock.ts",
  "util/random.ts",
  "util/log.ts",
  "protocol/_gen/generate.ts",
]);

/**
 * Folders of command-line tools: the `tidelog <noun> <verb>` admin commands are a Kafka
 * client run once from a shell, never inside a node or the simulation.
 */
const ALLOWED_DIRS = ["admin/"];

const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\(/, "Date.now (use the injected Clock)"],
  [/\bperformance\.now\(/, "performance.now (use the injected Clock)"],
  [
    /(?<![.\w#])(setTimeout|setInterval|clearTimeout|clearInterval)\(/,
    "a global timer (use Timers)",
  ],
  [
    /\bDeno\.(open|openSync|remove|removeSync|rename|renameSync|readDir|readDirSync|mkdir|mkdirSync|stat|statSync|lstat|lstatSync|readFile|readFileSync|readTextFile|readTextFileSync|writeFile|writeFileSync|writeTextFile|writeTextFileSync|truncate|makeTempDir|listen|connect)\b/,
    "a Deno file or network call (use FileSystem / Network)",
  ],
  [/\bcrypto\.getRandomValues\b|\bMath\.random\(/, "OS randomness (use the injected Random)"],
];

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) yield* tsFiles(`${path}/`);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

Deno.test("lib/ calls the clock, timers, disk, network and randomness only through lib/runtime", async () => {
  const found: string[] = [];
  for await (const path of tsFiles(LIB)) {
    const rel = relative(LIB, path);
    if (ALLOWED.has(rel) || ALLOWED_DIRS.some((d) => rel.startsWith(d))) continue;
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines.forEach((line, i) => {
      const code = line.trim();
      if (code.startsWith("*") || code.startsWith("//") || code.startsWith("/*")) return;
      for (const [re, what] of FORBIDDEN) {
        if (re.test(line)) found.push(`lib/${rel}:${i + 1}: ${what}: ${code}`);
      }
    });
  }
  assert.deepEqual(found, [], `direct calls found:\n${found.join("\n")}`);
});
