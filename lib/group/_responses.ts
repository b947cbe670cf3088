/**
 * Shapes response bodies to exactly the fields of one API version, using the generated
 * schema: fields absent in the version are dropped, missing ones take their defaults, and a
 * null where the version does not allow it becomes the field's non-null default.
 */

import {
  type DeepPartial,
  fieldDefault,
  type FieldSchema,
  inVersions,
  responseSchema,
  type ResponseTypes,
} from "../protocol/mod.ts";
import { assert } from "../util/assert.ts";

type Obj = Record<string, unknown>;

/** `body` trimmed and completed to the fields `apiKey`'s response has at `version`. */
export function fitResponse<K extends keyof ResponseTypes>(
  apiKey: K,
  version: number,
  body: DeepPartial<ResponseTypes[K]>,
): DeepPartial<ResponseTypes[K]> {
  const schema = responseSchema(apiKey);
  assert(schema !== undefined, `No response schema for API key ${apiKey}`);
  return fitStruct(schema.fields, version, body as Obj) as DeepPartial<ResponseTypes[K]>;
}

function fitStruct(fields: readonly FieldSchema[], version: number, src: Obj): Obj {
  const out: Obj = {};
  for (const f of fields) {
    if (!inVersions(f.versions, version)) continue;
    let v = src[f.name];
    if (v === undefined || (v === null && !inVersions(f.nullableVersions, version))) {
      v = fieldDefault(f);
      if (v === null && !inVersions(f.nullableVersions, version)) v = nonNullZero(f);
    }
    if (f.fields !== undefined && v !== null) {
      v = Array.isArray(v)
        ? v.map((e) => fitStruct(f.fields!, version, e as Obj))
        : fitStruct(f.fields, version, v as Obj);
    }
    out[f.name] = v;
  }
  return out;
}

function nonNullZero(f: FieldSchema): unknown {
  if (f.type.startsWith("[]")) return [];
  if (f.type === "string") return "";
  if (f.type === "bytes") return new Uint8Array(0);
  return 0;
}
