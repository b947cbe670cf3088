/**
 * The generic, schema-driven codec: compiles a {@linkcode MessageSchema} for one version
 * into closures that read and write it, and caches them. Handles every Kafka field type,
 * flexible versions (compact encodings + tagged fields), nullable fields and unknown
 * tagged fields (kept in `_unknownTaggedFields` and re-encoded).
 *
 * @module
 */

import {
  ByteReader,
  type BytesSource,
  ByteWriter,
  ProtocolDecodeError,
  ZERO_UUID,
} from "./bytes.ts";
import { inVersions } from "./schema.ts";
import type { DefaultValue, FieldSchema, MessageSchema, UnknownTaggedField } from "./schema.ts";

/**
 * The encoder's input: every field optional at every depth (a missing field takes its
 * default).
 */
export type DeepPartial<T> = T extends Uint8Array ? T | BytesSource
  : T extends bigint | number | string | boolean | null | undefined ? T
  : T extends readonly (infer U)[] ? readonly DeepPartial<U>[]
  : { [K in keyof T]?: DeepPartial<T[K]> };

/** A compiled reader/writer for one type at one version. */
interface TypeCodec {
  read(r: ByteReader): unknown;
  /** Writes `v`; `v` is never undefined here (the struct writer substitutes defaults). */
  write(w: ByteWriter, v: unknown): void;
  /** The fewest bytes one value can take, for length checks before allocation. */
  readonly minSize: number;
}

type Obj = Record<string, unknown>;

/** A compiled struct (or message) at one version. */
export interface StructCodec {
  read(r: ByteReader): Obj;
  write(w: ByteWriter, v: Obj | undefined): void;
  readonly minSize: number;
  /** Whether `v` equals the all-defaults struct at this version (tagged-field omission). */
  isDefault(v: Obj): boolean;
}

const EMPTY_BYTES = new Uint8Array(0);

function isNullableAnywhere(f: FieldSchema): boolean {
  return f.nullableVersions !== undefined;
}

/** The value a field takes when absent or not given, in any version. */
export function fieldDefault(f: FieldSchema): unknown {
  const d: DefaultValue | undefined = f.default;
  if (d === null && isNullableAnywhere(f)) return null;
  if (d !== undefined && d !== null) return d;
  if (f.type === "records") return isNullableAnywhere(f) ? null : EMPTY_BYTES;
  return zeroValue(f);
}

/** The non-null default of a field: its explicit default, else its type's zero. */
function nonNullDefault(f: FieldSchema): unknown {
  const d = f.default;
  if (d !== undefined && d !== null) return d;
  return zeroValue(f);
}

function zeroValue(f: FieldSchema): unknown {
  const t = f.type;
  if (t.startsWith("[]")) return [];
  switch (t) {
    case "bool":
      return false;
    case "int8":
    case "int16":
    case "uint16":
    case "int32":
    case "uint32":
    case "float64":
      return 0;
    case "int64":
      return 0n;
    case "string":
      return "";
    case "uuid":
      return ZERO_UUID;
    case "bytes":
    case "records":
      return EMPTY_BYTES;
    default:
      return defaultStruct(f.fields ?? []);
  }
}

/** A struct with every field at its default (all versions' fields present). */
export function defaultStruct(fields: readonly FieldSchema[]): Obj {
  const o: Obj = {};
  for (const f of fields) o[f.name] = fieldDefault(f);
  return o;
}

function sameDefault(v: unknown, d: unknown): boolean {
  if (v === d) return true;
  if (v === null || d === null) return false;
  if (v instanceof Uint8Array && d instanceof Uint8Array) {
    return v.byteLength === 0 && d.byteLength === 0;
  }
  if (Array.isArray(v) && Array.isArray(d)) return v.length === 0 && d.length === 0;
  return false;
}

const int8: TypeCodec = { read: (r) => r.int8(), write: (w, v) => w.int8(v as number), minSize: 1 };
const int16: TypeCodec = {
  read: (r) => r.int16(),
  write: (w, v) => w.int16(v as number),
  minSize: 2,
};
const uint16: TypeCodec = {
  read: (r) => r.uint16(),
  write: (w, v) => w.uint16(v as number),
  minSize: 2,
};
const int32: TypeCodec = {
  read: (r) => r.int32(),
  write: (w, v) => w.int32(v as number),
  minSize: 4,
};
const uint32: TypeCodec = {
  read: (r) => r.uint32(),
  write: (w, v) => w.uint32(v as number),
  minSize: 4,
};
const int64: TypeCodec = {
  read: (r) => r.int64(),
  write: (w, v) => w.int64(v as bigint),
  minSize: 8,
};
const float64: TypeCodec = {
  read: (r) => r.float64(),
  write: (w, v) => w.float64(v as number),
  minSize: 8,
};
const bool: TypeCodec = {
  read: (r) => r.bool(),
  write: (w, v) => w.bool(v as boolean),
  minSize: 1,
};
const uuid: TypeCodec = {
  read: (r) => r.uuid(),
  write: (w, v) => w.uuid(v as string),
  minSize: 16,
};

function stringCodec(compact: boolean, nullable: boolean): TypeCodec {
  return compact
    ? {
      read: (r) => r.compactString(nullable),
      write: (w, v) => w.compactString(v as string | null),
      minSize: 1,
    }
    : {
      read: (r) => r.string(nullable),
      write: (w, v) => w.string(v as string | null),
      minSize: 2,
    };
}

function bytesCodec(compact: boolean, nullable: boolean): TypeCodec {
  return compact
    ? {
      read: (r) => r.compactBytes(nullable),
      write: (w, v) => w.compactBytes(v as Uint8Array | BytesSource | null),
      minSize: 1,
    }
    : {
      read: (r) => r.bytes(nullable),
      write: (w, v) => w.bytes(v as Uint8Array | BytesSource | null),
      minSize: 4,
    };
}

function primitive(type: string, compact: boolean, nullable: boolean): TypeCodec | undefined {
  switch (type) {
    case "int8":
      return int8;
    case "int16":
      return int16;
    case "uint16":
      return uint16;
    case "int32":
      return int32;
    case "uint32":
      return uint32;
    case "int64":
      return int64;
    case "float64":
      return float64;
    case "bool":
      return bool;
    case "uuid":
      return uuid;
    case "string":
      return stringCodec(compact, nullable);
    case "bytes":
    case "records":
      return bytesCodec(compact, nullable);
    default:
      return undefined;
  }
}

function arrayCodec(el: TypeCodec, compact: boolean, nullable: boolean, what: string): TypeCodec {
  const readItems = (r: ByteReader, n: number): unknown[] => {
    r.checkCount(n, el.minSize, what);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = el.read(r);
    return out;
  };
  const writeItems = (w: ByteWriter, a: readonly unknown[]) => {
    for (let i = 0; i < a.length; i++) el.write(w, a[i]);
  };
  if (compact) {
    return {
      read(r) {
        const n = r.uvarint() - 1;
        if (n === -1) {
          if (nullable) return null;
          throw new ProtocolDecodeError(`Cannot read ${what}: null where not nullable`);
        }
        return readItems(r, n);
      },
      write(w, v) {
        if (v === null) return w.uvarint(0);
        const a = v as readonly unknown[];
        w.uvarint(a.length + 1);
        writeItems(w, a);
      },
      minSize: 1,
    };
  }
  return {
    read(r) {
      const n = r.int32();
      if (n === -1 && nullable) return null;
      return readItems(r, n);
    },
    write(w, v) {
      if (v === null) return w.int32(-1);
      const a = v as readonly unknown[];
      w.int32(a.length);
      writeItems(w, a);
    },
    minSize: 4,
  };
}

interface FieldPlan {
  readonly name: string;
  readonly codec: TypeCodec;
  readonly nullable: boolean;
  /** Default written when the value is missing (never null if not nullable here). */
  readonly writeDefault: () => unknown;
  readonly field: FieldSchema;
}

interface TaggedPlan extends FieldPlan {
  readonly tag: number;
  readonly isDefault: (v: unknown) => boolean;
}

function defaultFactory(value: unknown, f: FieldSchema): () => unknown {
  // Arrays and structs are fresh per use, so callers may mutate decoded values.
  if (Array.isArray(value)) return () => [];
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    return () => defaultStruct(f.fields ?? []);
  }
  return () => value;
}

/** Compiles the type of field `f` at `version`. */
function fieldCodec(f: FieldSchema, version: number, flexible: boolean): TypeCodec {
  const nullable = inVersions(f.nullableVersions, version);
  const compact = flexible &&
    (f.flexibleVersions === undefined || inVersions(f.flexibleVersions, version));
  const p = primitive(f.type, compact, nullable);
  if (p !== undefined) return p;
  if (f.type.startsWith("[]")) {
    const elType = f.type.slice(2);
    const el = primitive(elType, compact, false) ??
      structCodec(f.fields ?? [], version, flexible, f.struct ?? elType);
    return arrayCodec(el, compact, nullable, `array ${f.name}`);
  }
  const s = structCodec(f.fields ?? [], version, flexible, f.struct ?? f.type);
  if (!nullable) return s;
  // Nullable structs carry an int8 marker: -1 for null, 1 for present.
  return {
    read(r) {
      return r.int8() < 0 ? null : s.read(r);
    },
    write(w, v) {
      if (v === null) return w.int8(-1);
      w.int8(1);
      s.write(w, v as Obj);
    },
    minSize: 1,
  };
}

function readTagged(r: ByteReader, tagged: ReadonlyMap<number, TaggedPlan>, obj: Obj): void {
  const count = r.uvarint();
  r.checkCount(count, 2, "tagged fields");
  let unknown: UnknownTaggedField[] | undefined;
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint();
    const size = r.uvarint();
    const data = r.raw(size);
    const plan = tagged.get(tag);
    if (plan === undefined) {
      (unknown ??= []).push({ tag, data });
      continue;
    }
    const sub = new ByteReader(data);
    obj[plan.name] = plan.codec.read(sub);
    if (sub.remaining !== 0) {
      throw new ProtocolDecodeError(
        `Cannot read tagged field ${plan.name} (tag ${tag}): ${sub.remaining} bytes left over`,
      );
    }
  }
  if (unknown !== undefined) obj._unknownTaggedFields = unknown;
}

function writeTagged(w: ByteWriter, tagged: readonly TaggedPlan[], v: Obj | undefined): void {
  const unknown = v?._unknownTaggedFields as readonly UnknownTaggedField[] | undefined;
  const items: { tag: number; data: Uint8Array }[] = [];
  for (const t of tagged) {
    const value = v?.[t.name];
    if (value === undefined || t.isDefault(value)) continue;
    if (value === null && !t.nullable) {
      throw new TypeError(`Cannot encode tagged field ${t.name}: null is not allowed`);
    }
    const sub = new ByteWriter(64);
    t.codec.write(sub, value);
    items.push({ tag: t.tag, data: sub.finish() });
  }
  if (unknown !== undefined && unknown.length > 0) {
    for (const u of unknown) items.push({ tag: u.tag, data: u.data });
    items.sort((a, b) => a.tag - b.tag);
  }
  w.uvarint(items.length);
  for (const it of items) {
    w.uvarint(it.tag);
    w.uvarint(it.data.byteLength);
    w.raw(it.data);
  }
}

/** A predicate: does a value of field `f` equal its default (as Kafka's `equals`)? */
function valueIsDefault(
  f: FieldSchema,
  version: number,
  flexible: boolean,
): (v: unknown) => boolean {
  const d = fieldDefault(f);
  if (f.fields !== undefined && !f.type.startsWith("[]") && d !== null) {
    const sc = structCodec(f.fields, version, flexible, f.struct ?? f.type);
    return (v) => v !== null && sc.isDefault(v as Obj);
  }
  return (v) => sameDefault(v, d);
}

/** Compiles a struct's fields at one version. */
export function structCodec(
  fields: readonly FieldSchema[],
  version: number,
  flexible: boolean,
  name: string,
): StructCodec {
  const regular: FieldPlan[] = [];
  const taggedList: TaggedPlan[] = [];
  const absent: { name: string; make: () => unknown }[] = [];
  for (const f of fields) {
    if (!inVersions(f.versions, version)) {
      absent.push({ name: f.name, make: defaultFactory(fieldDefault(f), f) });
      continue;
    }
    const nullable = inVersions(f.nullableVersions, version);
    const d = fieldDefault(f);
    const wd = d === null && !nullable ? nonNullDefault(f) : d;
    const plan: FieldPlan = {
      name: f.name,
      codec: fieldCodec(f, version, flexible),
      nullable,
      writeDefault: defaultFactory(wd, f),
      field: f,
    };
    if (inVersions(f.taggedVersions, version)) {
      if (!flexible) {
        // A tagged field outside flexible versions cannot be on the wire.
        absent.push({ name: f.name, make: defaultFactory(d, f) });
        continue;
      }
      const isDefault = valueIsDefault(f, version, flexible);
      taggedList.push({ ...plan, tag: f.tag ?? 0, isDefault });
      absent.push({ name: f.name, make: defaultFactory(d, f) });
    } else {
      regular.push(plan);
    }
  }
  taggedList.sort((a, b) => a.tag - b.tag);
  const taggedMap = new Map(taggedList.map((t) => [t.tag, t]));
  let minSize = flexible ? 1 : 0;
  for (const p of regular) minSize += p.codec.minSize;

  const read = (r: ByteReader): Obj => {
    const obj: Obj = {};
    for (let i = 0; i < regular.length; i++) {
      const p = regular[i]!;
      obj[p.name] = p.codec.read(r);
    }
    if (flexible) readTagged(r, taggedMap, obj);
    for (let i = 0; i < absent.length; i++) {
      const a = absent[i]!;
      if (!(a.name in obj)) obj[a.name] = a.make();
    }
    return obj;
  };

  const write = (w: ByteWriter, v: Obj | undefined): void => {
    for (let i = 0; i < regular.length; i++) {
      const p = regular[i]!;
      let value = v?.[p.name];
      if (value === undefined) value = p.writeDefault();
      else if (value === null && !p.nullable) {
        throw new TypeError(
          `Cannot encode ${name}.${p.name} at version ${version}: null is not allowed`,
        );
      }
      p.codec.write(w, value);
    }
    if (flexible) writeTagged(w, taggedList, v);
  };

  // Built on first use: only tagged struct fields ever ask.
  let regularIsDefault: ((v: unknown) => boolean)[] | undefined;
  const isDefault = (v: Obj): boolean => {
    regularIsDefault ??= regular.map((p) => valueIsDefault(p.field, version, flexible));
    for (let i = 0; i < regular.length; i++) {
      const value = v[regular[i]!.name];
      if (value !== undefined && !regularIsDefault[i]!(value)) return false;
    }
    for (const t of taggedList) {
      const value = v[t.name];
      if (value !== undefined && !t.isDefault(value)) return false;
    }
    const unknown = v._unknownTaggedFields as unknown[] | undefined;
    return unknown === undefined || unknown.length === 0;
  };

  return { read, write, minSize, isDefault };
}

/** Whether `version` of `schema` uses flexible (compact + tagged) encodings. */
export function isFlexible(schema: MessageSchema, version: number): boolean {
  return schema.flexibleVersions !== null && version >= schema.flexibleVersions[0];
}

const cache = new WeakMap<MessageSchema, Map<number, StructCodec>>();

/** The compiled codec of `schema` at `version` (cached). */
export function messageCodec(schema: MessageSchema, version: number): StructCodec {
  let byVersion = cache.get(schema);
  if (byVersion === undefined) {
    byVersion = new Map();
    cache.set(schema, byVersion);
  }
  let c = byVersion.get(version);
  if (c === undefined) {
    c = structCodec(schema.fields, version, isFlexible(schema, version), schema.name);
    byVersion.set(version, c);
  }
  return c;
}

function checkVersion(schema: MessageSchema, version: number, make: (m: string) => Error): void {
  const [min, max] = schema.validVersions;
  if (!Number.isInteger(version) || version < min || version > max) {
    throw make(`${schema.name} has no version ${version} (valid ${min}-${max})`);
  }
}

/**
 * Decodes one whole message body; fails if bytes remain.
 *
 * @throws {ProtocolDecodeError} If the bytes are malformed, truncated, have trailing
 * bytes, or the version is not valid for the schema.
 */
export function decodeMessage(schema: MessageSchema, version: number, bytes: Uint8Array): Obj {
  checkVersion(schema, version, (m) => new ProtocolDecodeError(`Cannot decode: ${m}`));
  const r = new ByteReader(bytes);
  let value: Obj;
  try {
    value = messageCodec(schema, version).read(r);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProtocolDecodeError(`Cannot decode ${schema.name} v${version}: ${msg}`, { cause: e });
  }
  if (r.remaining !== 0) {
    throw new ProtocolDecodeError(
      `Cannot decode ${schema.name} v${version}: ${r.remaining} trailing bytes at offset ${r.offset}`,
    );
  }
  return value;
}

/**
 * Encodes one message body into `w`. Missing fields take their defaults; fields absent
 * from `version` are skipped.
 *
 * @throws {RangeError} If the version is not valid for the schema.
 * @throws {TypeError} If a field is null where that version does not allow null.
 */
export function encodeMessage(
  schema: MessageSchema,
  version: number,
  value: object,
  w: ByteWriter = new ByteWriter(),
): ByteWriter {
  checkVersion(schema, version, (m) => new RangeError(`Cannot encode: ${m}`));
  messageCodec(schema, version).write(w, value as Obj);
  return w;
}
