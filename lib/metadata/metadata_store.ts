/**
 * The one-node metadata quorum's driver: owns the record journal and the current
 * {@linkcode MetadataImage}, serialises proposals (each is planned against the latest
 * image, persisted with fsync, then applied) and tells listeners about every new image.
 */
import { join } from "node:path";
import { getLogger } from "../util/log.ts";
import { MetadataImage } from "./metadata_image.ts";
import type { MetadataRecord } from "./records.ts";
import { RecordJournal } from "./record_journal.ts";

const log = getLogger(["tidelog", "metadata"]);

/** Called after each committed change, in commit order; awaited before the next commit. */
export type ImageListener = (prev: MetadataImage, next: MetadataImage) => Promise<void> | void;

/** Durable metadata for a single node: records → journal (fsync) → image. */
export class MetadataStore {
  #journal: RecordJournal;
  #image: MetadataImage;
  #queue: Promise<unknown> = Promise.resolve();
  #listeners: ImageListener[] = [];

  private constructor(journal: RecordJournal, image: MetadataImage) {
    this.#journal = journal;
    this.#image = image;
  }

  /** Opens (or creates) the journal under `dir` and replays it into an image. */
  static async open(dir: string): Promise<MetadataStore> {
    await Deno.mkdir(dir, { recursive: true });
    const { journal, records } = await RecordJournal.open(join(dir, "records.log"));
    const image = MetadataImage.EMPTY.applyAll(records);
    log.info("Loaded {count} metadata records ({topics} topics)", {
      count: records.length,
      topics: image.topicsById.size,
    });
    return new MetadataStore(journal, image);
  }

  /** The latest committed image. */
  get image(): MetadataImage {
    return this.#image;
  }

  /** Registers a listener for image changes. */
  onChange(listener: ImageListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Runs `plan` against the latest image once every earlier proposal has finished,
   * persists the records it returns and applies them. Resolves with plan's result after
   * listeners have seen the new image; rejects with whatever plan throws (nothing is
   * written then).
   */
  propose<T>(plan: (image: MetadataImage) => { records: MetadataRecord[]; result: T }): Promise<T> {
    const run = async () => {
      const { records, result } = plan(this.#image);
      if (records.length > 0) {
        await this.#journal.append(records);
        const prev = this.#image;
        this.#image = prev.applyAll(records);
        for (const listener of this.#listeners) await listener(prev, this.#image);
      }
      return result;
    };
    const p = this.#queue.then(run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Waits for pending proposals and closes the journal. */
  async close(): Promise<void> {
    await this.#queue;
    this.#journal.close();
  }
}
