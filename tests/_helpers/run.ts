/** Running a helper program from a test (a Kafka client, `ip`) and collecting its output. */

/** Runs a command to completion, returning stdout/stderr text; throws on a non-zero exit. */
export async function run(
  cmd: string,
  args: string[],
  options: {
    stdin?: Uint8Array | string;
    timeoutMs?: number;
    allowFailure?: boolean;
    /** Working directory. */
    cwd?: string;
  } = {},
): Promise<{ code: number; stdout: string; stderr: string; stdoutBytes: Uint8Array }> {
  const child = new Deno.Command(cmd, {
    args,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(
      typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
    );
    await w.close();
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, options.timeoutMs ?? 120_000);
  const out = await child.output();
  clearTimeout(timer);
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    stdoutBytes: out.stdout,
  };
  if (!out.success && !options.allowFailure) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${out.code}\n${result.stderr.slice(-2000)}`,
    );
  }
  return result;
}
