/**
 * The shape of Docker's request types as Go's encoding/json sees them. The tree is generated
 * from the Engine API's swagger.yaml (v1.41) by scripts/gen-api-schema.mjs, with Go facts the
 * swagger leaves out (unsigned ints, StrSlice, []byte, Go type names) added there.
 */
export type TypeNode =
  /** `go`: the Go type name shown in errors when it is a named type (`swarm.NodeRole`). */
  | { k: 'string'; go?: string }
  | { k: 'bool' }
  | { k: 'int'; go: IntKind; name?: string }
  | { k: 'float'; go: 'float32' | 'float64' }
  /** interface{}: any JSON value, kept as sent. */
  | { k: 'any' }
  /** A struct without fields (`struct {}`, `swarm.GlobalService`): any object, contents ignored. */
  | { k: 'empty'; go: string }
  /** strslice.StrSlice: a string or an array of strings. */
  | { k: 'strslice' }
  /** []byte: base64 text. */
  | { k: 'bytes' }
  | { k: 'slice'; of: TypeNode }
  /** Keys are kept exactly as sent. */
  | { k: 'map'; of: TypeNode }
  | { k: 'ref'; name: string }
  /** Field names are the canonical (Go JSON) names, in Go's field order. */
  | { k: 'struct'; go: string; fields: Record<string, TypeNode> };

export type IntKind = 'int' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint' | 'uint8' | 'uint16' | 'uint32' | 'uint64';

export interface Schema {
  /** Where the tree came from (swagger version), for the reader. */
  source: string;
  defs: Record<string, TypeNode>;
}
