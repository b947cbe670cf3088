/**
 * The fsync call of the log, swappable so tests can inject failures (the std
 * `_internals` pattern). Never replaced outside tests.
 */
export const _internals = {
  /** fdatasync of a segment file. */
  syncData(file: Deno.FsFile): Promise<void> {
    return file.syncData();
  },
};
