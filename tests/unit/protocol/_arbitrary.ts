/**
 * fast-check arbitraries for any message schema at one version. A generated value is what
 * the decoder returns for that version: fields absent in the version hold their defaults,
 * and unknown tagged fields (only in flexible versions) use tags the schema does not know.
 */

import fc from "fast-check";
import {
  defaultStruct,
  fieldDefault,
  type FieldSchema,
  inVersions,
  type MessageSchema,
  uuidToString,
} from "../../../lib/protocol/mod.ts";

type Arb = fc.Arbitrary<unknown>;

const TEXT = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 6 }),
);

function primitiveArb(type: string): Arb | undefined {
  switch (type) {
    case "int8":
      return fc.integer({ min: -128, max: 127 });
    case "int16":
      return fc.integer({ min: -32768, max: 32767 });
    case "uint16":
      return fc.integer({ min: 0, max: 65535 });
    case "int32":
      return fc.integer();
    case "uint32":
      return fc.integer({ min: 0, max: 0xffffffff });
    case "int64":
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case "float64":
      return fc.double();
    case "bool":
      return fc.boolean();
    case "string":
      return TEXT;
    case "uuid":
      return fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => uuidToString(b));
    case "bytes":
    case "records":
      return fc.uint8Array({ maxLength: 8 });
    default:
      return undefined;
  }
}

function unknownTagsArb(fields: readonly FieldSchema[]): fc.Arbitrary<
  { tag: number; data: Uint8Array }[]
> {
  const known = new Set(fields.filter((f) => f.tag !== undefined).map((f) => f.tag));
  return fc.uniqueArray(fc.integer({ min: 0, max: 300 }).filter((t) => !known.has(t)), {
    maxLength: 2,
  }).chain((tags) =>
    fc.tuple(
      ...tags.sort((a, b) => a - b).map((tag) =>
        fc.uint8Array({ maxLength: 4 }).map((data) => ({ tag, data }))
      ),
    )
  );
}

function structArb(fields: readonly FieldSchema[], version: number, flexible: boolean): Arb {
  const shape: Record<string, Arb> = {};
  for (const f of fields) {
    if (!inVersions(f.versions, version) || (!flexible && inVersions(f.taggedVersions, version))) {
      shape[f.name] = fc.constant(null).map(() => freshDefault(f));
    } else {
      shape[f.name] = fieldArb(f, version, flexible);
    }
  }
  // fc.record makes null-prototype objects; the decoder makes plain ones.
  const base = fc.record(shape).map((o) => ({ ...o }));
  if (!flexible) return base;
  return fc.tuple(base, fc.oneof(fc.constant([]), unknownTagsArb(fields))).map(([obj, unknown]) => {
    const o = obj as Record<string, unknown>;
    if (unknown.length > 0) o._unknownTaggedFields = unknown;
    return o;
  });
}

function freshDefault(f: FieldSchema): unknown {
  const d = fieldDefault(f);
  if (Array.isArray(d)) return [];
  if (d !== null && typeof d === "object" && !(d instanceof Uint8Array)) {
    return defaultStruct(f.fields ?? []);
  }
  return d;
}

function fieldArb(f: FieldSchema, version: number, flexible: boolean): Arb {
  const nullable = inVersions(f.nullableVersions, version);
  let arb: Arb;
  const p = primitiveArb(f.type);
  if (p !== undefined) {
    arb = p;
  } else if (f.type.startsWith("[]")) {
    const el = primitiveArb(f.type.slice(2)) ?? structArb(f.fields ?? [], version, flexible);
    arb = fc.array(el, { maxLength: 3 });
  } else {
    arb = structArb(f.fields ?? [], version, flexible);
  }
  return nullable ? fc.option(arb, { nil: null, freq: 4 }) : arb;
}

/** Values of `schema` at `version`, as the decoder would return them. */
export function messageArb(schema: MessageSchema, version: number): fc.Arbitrary<
  Record<string, unknown>
> {
  const flexible = schema.flexibleVersions !== null && version >= schema.flexibleVersions[0];
  return structArb(schema.fields, version, flexible) as fc.Arbitrary<Record<string, unknown>>;
}
