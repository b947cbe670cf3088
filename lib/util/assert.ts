/** Raised when an internal invariant is broken: a bug, never an expected condition. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Throws {@linkcode AssertionError} unless `condition` holds. */
export function assert(condition: unknown, message = "Assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch the type system proves unreachable. */
export function unreachable(value: never): never {
  throw new AssertionError(`Unreachable: ${JSON.stringify(value)}`);
}
