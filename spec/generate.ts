// Generates src/protocol/generated/amqp.ts from the AMQP 0-9-1 specification (with RabbitMQ's
// extensions) in this folder. Run with `npm run codegen`; test/protocol/codegen.test.ts
// regenerates and fails if the committed file differs.
//
// What is generated, per method: a key (classId << 16 | methodId), an interface whose fields are in
// spec order (so every decoded object of a method shares one hidden class), a decoder with one
// bounds check per run of fixed-size fields, a size function and an in-place writer. Plus the
// frame constants, the reply-code table with its hard/soft classification, and the 14 basic
// content properties.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser } from 'fast-xml-parser';

interface SpecField {
  name: string;
  type: string; // resolved AMQP type: bit octet short long longlong shortstr longstr timestamp table
}
interface SpecMethod {
  name: string;
  index: number;
  synchronous: boolean;
  content: boolean;
  responses: string[];
  fields: SpecField[];
}
interface SpecClass {
  name: string;
  index: number;
  methods: SpecMethod[];
  properties: SpecField[];
}
interface SpecConstant {
  name: string;
  value: number;
  errorClass: 'soft-error' | 'hard-error' | undefined;
}
interface Spec {
  constants: SpecConstant[];
  classes: SpecClass[];
}

const specDir = dirname(fileURLToPath(import.meta.url)).replace(/[/\\]dist[/\\]spec$/, '/spec');
const repoRoot = join(specDir, '..');
export const SPEC_FILES = ['amqp0-9-1.stripped.extended.xml', 'rabbitmq-extensions.xml'];
export const OUTPUT_FILE = join(repoRoot, 'src/protocol/generated/amqp.ts');

const asArray = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

type XmlNode = Record<string, unknown>;

export function loadSpec(): Spec {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' });
  const spec: Spec = { constants: [], classes: [] };
  const domains = new Map<string, string>();
  for (const file of SPEC_FILES) {
    const doc = parser.parse(readFileSync(join(specDir, file), 'utf8')) as { amqp: XmlNode };
    for (const c of asArray(doc.amqp.constant as XmlNode[])) {
      spec.constants.push({
        name: String(c.name),
        value: Number(c.value),
        errorClass: c.class as SpecConstant['errorClass'],
      });
    }
    for (const d of asArray(doc.amqp.domain as XmlNode[])) domains.set(String(d.name), String(d.type));
    const resolve = (f: XmlNode): SpecField => {
      const type = f.type !== undefined ? String(f.type) : domains.get(String(f.domain));
      if (!type) throw new Error(`field ${String(f.name)}: unknown domain ${String(f.domain)}`);
      return { name: String(f.name), type };
    };
    for (const c of asArray(doc.amqp.class as XmlNode[])) {
      const name = String(c.name);
      let cls = spec.classes.find((x) => x.name === name);
      if (!cls) {
        cls = { name, index: Number(c.index), methods: [], properties: [] };
        spec.classes.push(cls);
      }
      cls.properties.push(...asArray(c.field as XmlNode[]).map(resolve));
      for (const m of asArray(c.method as XmlNode[])) {
        cls.methods.push({
          name: String(m.name),
          index: Number(m.index),
          synchronous: m.synchronous === '1',
          content: m.content === '1',
          responses: asArray(m.response as XmlNode[]).map((r) => String(r.name)),
          fields: asArray(m.field as XmlNode[]).map(resolve),
        });
      }
    }
  }
  for (const cls of spec.classes) cls.methods.sort((a, b) => a.index - b.index);
  return spec;
}

/** A local variable name for a field ('arguments' is reserved in strict mode). */
const localName = (n: string): string => (n === 'arguments' ? 'args' : n);
const camel = (s: string): string => s.replace(/-([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
const pascal = (s: string): string => camel(s).replace(/^./, (ch) => ch.toUpperCase());
const upper = (s: string): string => s.replace(/-/g, '_').toUpperCase();
const hex = (n: number): string => '0x' + n.toString(16).padStart(8, '0');

const TS_TYPES: Record<string, string> = {
  bit: 'boolean',
  octet: 'number',
  short: 'number',
  long: 'number',
  longlong: 'number',
  timestamp: 'number',
  shortstr: 'string',
  longstr: 'Buffer',
  table: 'FieldTable',
};
const FIXED_SIZES: Record<string, number> = { octet: 1, short: 2, long: 4, longlong: 8, timestamp: 8 };

/** The name a property or field gets in TypeScript. */
function fieldName(cls: SpecClass | undefined, f: SpecField): string {
  // The basic class's "reserved" property is RabbitMQ's cluster-id; clients call it that.
  if (cls?.name === 'basic' && f.name === 'reserved') return 'clusterId';
  return camel(f.name);
}

interface Segment {
  kind: 'fixed' | 'bits' | 'var';
  fields: SpecField[];
  size: number;
}

/** Groups fields into runs: consecutive fixed-size fields, packed bits, and variable-size fields. */
function segments(fields: SpecField[]): Segment[] {
  const out: Segment[] = [];
  for (const f of fields) {
    const last = out[out.length - 1];
    if (f.type === 'bit') {
      if (last?.kind === 'bits' && last.fields.length < 8) {
        last.fields.push(f);
      } else {
        out.push({ kind: 'bits', fields: [f], size: 1 });
      }
    } else if (FIXED_SIZES[f.type] !== undefined) {
      if (last?.kind === 'fixed') {
        last.fields.push(f);
        last.size += FIXED_SIZES[f.type]!;
      } else {
        out.push({ kind: 'fixed', fields: [f], size: FIXED_SIZES[f.type]! });
      }
    } else {
      out.push({ kind: 'var', fields: [f], size: 0 });
    }
  }
  // A bit run followed directly by fixed fields can share one bounds check.
  return out;
}

function readFixed(f: SpecField, at: string): string {
  switch (f.type) {
    case 'octet':
      return `b[${at}]!`;
    case 'short':
      return `b.readUInt16BE(${at})`;
    case 'long':
      return `b.readUInt32BE(${at})`;
    case 'longlong':
    case 'timestamp':
      return `b.readUInt32BE(${at}) * 4294967296 + b.readUInt32BE(${at} + 4)`;
    default:
      throw new Error(`not fixed: ${f.type}`);
  }
}

function writeFixed(f: SpecField, value: string, at: string): string {
  switch (f.type) {
    case 'octet':
      return `b[${at}] = ${value};`;
    case 'short':
      return `b.writeUInt16BE(${value}, ${at});`;
    case 'long':
      return `b.writeUInt32BE(${value}, ${at});`;
    case 'longlong':
    case 'timestamp':
      return `writeUInt64(b, ${at}, ${value});`;
    default:
      throw new Error(`not fixed: ${f.type}`);
  }
}

function genDecoder(cls: SpecClass, m: SpecMethod, typeName: string, keyName: string): string {
  const lines: string[] = [];
  lines.push(`function decode${typeName}(b: Buffer, o: number, e: number): ${typeName} {`);
  const names: string[] = [];
  for (const seg of segments(m.fields)) {
    if (seg.kind === 'fixed') {
      lines.push(`  if (o + ${seg.size} > e) truncated(${keyName});`);
      let at = 0;
      for (const f of seg.fields) {
        const n = fieldName(undefined, f);
        const v = localName(n);
        names.push(n);
        lines.push(`  const ${v} = ${readFixed(f, at === 0 ? 'o' : `o + ${at}`)};`);
        at += FIXED_SIZES[f.type]!;
      }
      lines.push(`  o += ${seg.size};`);
    } else if (seg.kind === 'bits') {
      lines.push(`  if (o + 1 > e) truncated(${keyName});`);
      const bitsVar = `bits${names.length}`;
      lines.push(`  const ${bitsVar} = b[o]!;`);
      seg.fields.forEach((f, i) => {
        const n = fieldName(undefined, f);
        const v = localName(n);
        names.push(n);
        lines.push(`  const ${v} = (${bitsVar} & ${1 << i}) !== 0;`);
      });
      lines.push(`  o += 1;`);
    } else {
      const f = seg.fields[0]!;
      const n = fieldName(undefined, f);
        const v = localName(n);
      names.push(n);
      if (f.type === 'shortstr') {
        lines.push(`  if (o >= e || o + 1 + b[o]! > e) truncated(${keyName});`);
        lines.push(`  const ${v} = b.toString('utf8', o + 1, o + 1 + b[o]!);`);
        lines.push(`  o += 1 + b[o]!;`);
      } else if (f.type === 'longstr') {
        lines.push(`  if (o + 4 > e || o + 4 + b.readUInt32BE(o) > e) truncated(${keyName});`);
        lines.push(`  const ${v} = b.subarray(o + 4, o + 4 + b.readUInt32BE(o));`);
        lines.push(`  o += 4 + ${v}.length;`);
      } else if (f.type === 'table') {
        lines.push(`  const t${names.length} = readTable(b, o, e, true);`);
        lines.push(`  const ${v} = t${names.length}[0];`);
        lines.push(`  o = t${names.length}[1];`);
      } else {
        throw new Error(`unsupported type ${f.type}`);
      }
    }
  }
  if (names.length === 0) lines.push(`  void b; void o; void e;`);
  lines.push(`  return { id: ${keyName}${names.map((n) => (localName(n) === n ? `, ${n}` : `, ${n}: ${localName(n)}`)).join('')} };`);
  lines.push(`}`);
  void cls;
  return lines.join('\n');
}

function genSize(m: SpecMethod, typeName: string): string {
  let fixed = 0;
  const parts: string[] = [];
  for (const seg of segments(m.fields)) {
    if (seg.kind !== 'var') {
      fixed += seg.size;
      continue;
    }
    const f = seg.fields[0]!;
    const n = `m.${fieldName(undefined, f)}`;
    if (f.type === 'shortstr') {
      fixed += 1;
      parts.push(`Buffer.byteLength(${n})`);
    } else if (f.type === 'longstr') {
      fixed += 4;
      parts.push(`${n}.length`);
    } else {
      parts.push(`tableSize(${n})`);
    }
  }
  const unused = parts.length === 0 ? `  void m;\n` : '';
  return `function size${typeName}(m: ${typeName}): number {\n${unused}  return ${[String(fixed), ...parts].join(' + ')};\n}`;
}

function genWriter(m: SpecMethod, typeName: string): string {
  const lines: string[] = [`function write${typeName}(b: Buffer, o: number, m: ${typeName}): number {`];
  if (m.fields.length === 0) lines.push(`  void b; void m;`);
  for (const seg of segments(m.fields)) {
    if (seg.kind === 'fixed') {
      let at = 0;
      for (const f of seg.fields) {
        lines.push(`  ${writeFixed(f, `m.${fieldName(undefined, f)}`, at === 0 ? 'o' : `o + ${at}`)}`);
        at += FIXED_SIZES[f.type]!;
      }
      lines.push(`  o += ${seg.size};`);
    } else if (seg.kind === 'bits') {
      const expr = seg.fields.map((f, i) => `(m.${fieldName(undefined, f)} ? ${1 << i} : 0)`).join(' | ');
      lines.push(`  b[o] = ${expr};`);
      lines.push(`  o += 1;`);
    } else {
      const f = seg.fields[0]!;
      const n = `m.${fieldName(undefined, f)}`;
      if (f.type === 'shortstr') lines.push(`  o = writeShortStr(b, o, ${n});`);
      else if (f.type === 'longstr') lines.push(`  o = writeLongStr(b, o, ${n});`);
      else lines.push(`  o = writeTable(b, o, ${n});`);
    }
  }
  lines.push(`  return o;`, `}`);
  return lines.join('\n');
}

function genProperties(cls: SpecClass): string {
  const props = cls.properties;
  const lines: string[] = [];
  lines.push(`/** The ${props.length} content properties of the ${cls.name} class, in spec order. All optional. */`);
  lines.push(`export interface BasicProperties {`);
  for (const p of props) lines.push(`  ${fieldName(cls, p)}?: ${TS_TYPES[p.type]};`);
  lines.push(`}`);
  lines.push('');
  lines.push(`/** Property flag bit for each property (bit 15 is the first). */`);
  lines.push(`export const PROPERTY_FLAGS = {`);
  props.forEach((p, i) => lines.push(`  ${fieldName(cls, p)}: ${1 << (15 - i)},`));
  lines.push(`} as const;`);
  lines.push('');
  lines.push(`/** Decodes property flags and list (the part of a content header after body-size). */`);
  lines.push(`export function decodeBasicProperties(b: Buffer, o: number, e: number): BasicProperties {`);
  lines.push(`  if (o + 2 > e) truncated(0);`);
  lines.push(`  const flags = b.readUInt16BE(o);`);
  lines.push(`  o += 2;`);
  lines.push(`  const p: BasicProperties = {};`);
  props.forEach((p, i) => {
    const bit = 1 << (15 - i);
    const n = fieldName(cls, p);
    lines.push(`  if (flags & ${bit}) {`);
    if (p.type === 'shortstr') {
      lines.push(`    if (o >= e || o + 1 + b[o]! > e) truncated(0);`);
      lines.push(`    p.${n} = b.toString('utf8', o + 1, o + 1 + b[o]!);`);
      lines.push(`    o += 1 + b[o]!;`);
    } else if (p.type === 'table') {
      lines.push(`    const t = readTable(b, o, e, true);`);
      lines.push(`    p.${n} = t[0];`);
      lines.push(`    o = t[1];`);
    } else if (p.type === 'longstr') {
      lines.push(`    if (o + 4 > e || o + 4 + b.readUInt32BE(o) > e) truncated(0);`);
      lines.push(`    p.${n} = b.subarray(o + 4, o + 4 + b.readUInt32BE(o));`);
      lines.push(`    o += 4 + p.${n}.length;`);
    } else {
      const size = FIXED_SIZES[p.type]!;
      lines.push(`    if (o + ${size} > e) truncated(0);`);
      lines.push(`    p.${n} = ${readFixed(p, 'o')};`);
      lines.push(`    o += ${size};`);
    }
    lines.push(`  }`);
  });
  lines.push(`  return p;`);
  lines.push(`}`);
  lines.push('');
  lines.push(`/** Bytes of the property flags and list for these properties. */`);
  lines.push(`export function basicPropertiesSize(p: BasicProperties): number {`);
  lines.push(`  let size = 2;`);
  for (const p of props) {
    const n = fieldName(cls, p);
    if (p.type === 'shortstr') lines.push(`  if (p.${n} !== undefined) size += 1 + Buffer.byteLength(p.${n});`);
    else if (p.type === 'table') lines.push(`  if (p.${n} !== undefined) size += tableSize(p.${n});`);
    else if (p.type === 'longstr') lines.push(`  if (p.${n} !== undefined) size += 4 + p.${n}.length;`);
    else lines.push(`  if (p.${n} !== undefined) size += ${FIXED_SIZES[p.type]};`);
  }
  lines.push(`  return size;`);
  lines.push(`}`);
  lines.push('');
  lines.push(`/** Writes property flags and list at o; returns the offset after them. */`);
  lines.push(`export function writeBasicProperties(b: Buffer, o: number, p: BasicProperties): number {`);
  lines.push(`  const flagsAt = o;`);
  lines.push(`  let flags = 0;`);
  lines.push(`  o += 2;`);
  props.forEach((p, i) => {
    const n = fieldName(cls, p);
    lines.push(`  if (p.${n} !== undefined) {`);
    lines.push(`    flags |= ${1 << (15 - i)};`);
    if (p.type === 'shortstr') lines.push(`    o = writeShortStr(b, o, p.${n});`);
    else if (p.type === 'table') lines.push(`    o = writeTable(b, o, p.${n});`);
    else if (p.type === 'longstr') lines.push(`    o = writeLongStr(b, o, p.${n});`);
    else {
      lines.push(`    ${writeFixed(p, `p.${n}`, 'o')}`);
      lines.push(`    o += ${FIXED_SIZES[p.type]};`);
    }
    lines.push(`  }`);
  });
  lines.push(`  b.writeUInt16BE(flags, flagsAt);`);
  lines.push(`  return o;`);
  lines.push(`}`);
  return lines.join('\n');
}

export function generate(spec: Spec = loadSpec()): string {
  const out: string[] = [];
  out.push(`// GENERATED by spec/generate.ts from ${SPEC_FILES.map((f) => `spec/${f}`).join(' and ')}.`);
  out.push(`// Do not edit by hand: run \`npm run codegen\`. A test regenerates this file and fails on any difference.`);
  out.push(`/* eslint-disable */`);
  out.push('');
  out.push(`import { FrameError } from '../errors.js';`);
  out.push(
    `import { readTable, tableSize, writeLongStr, writeShortStr, writeTable, type FieldTable } from '../field-table.js';`,
  );
  out.push('');
  out.push(`// ---- Constants ----`);
  for (const c of spec.constants) {
    if (c.errorClass) continue;
    out.push(`export const ${upper(c.name)} = ${c.value};`);
  }
  out.push('');
  out.push(`export interface ReplyCodeInfo {`);
  out.push(`  readonly code: number;`);
  out.push(`  readonly name: string;`);
  out.push(`  /** hard errors close the connection, soft errors close the channel */`);
  out.push(`  readonly hard: boolean;`);
  out.push(`}`);
  out.push(`export const REPLY_CODES: readonly ReplyCodeInfo[] = [`);
  for (const c of spec.constants) {
    if (!c.errorClass) continue;
    out.push(`  { code: ${c.value}, name: '${upper(c.name)}', hard: ${c.errorClass === 'hard-error'} },`);
  }
  out.push(`];`);
  out.push('');
  out.push(`// ---- Class ids ----`);
  for (const cls of spec.classes) out.push(`export const CLASS_${upper(cls.name)} = ${cls.index};`);
  out.push('');
  out.push(`// ---- Method keys: classId << 16 | methodId ----`);
  const all: { cls: SpecClass; m: SpecMethod; key: number; keyName: string; typeName: string }[] = [];
  for (const cls of spec.classes) {
    for (const m of cls.methods) {
      const key = ((cls.index << 16) | m.index) >>> 0;
      const keyName = `${upper(cls.name)}_${upper(m.name)}`;
      const typeName = `${pascal(cls.name)}${pascal(m.name)}`;
      all.push({ cls, m, key, keyName, typeName });
      out.push(`export const ${keyName} = ${hex(key)};`);
    }
  }
  out.push('');
  out.push(`// ---- Method argument types (fields in spec order) ----`);
  for (const { cls, m, keyName, typeName } of all) {
    out.push(`/** ${cls.name}.${m.name}${m.synchronous ? ' (synchronous)' : ''}${m.content ? ' (carries content)' : ''} */`);
    out.push(`export interface ${typeName} {`);
    out.push(`  readonly id: typeof ${keyName};`);
    for (const f of m.fields) out.push(`  ${fieldName(undefined, f)}: ${TS_TYPES[f.type]};`);
    out.push(`}`);
  }
  out.push('');
  out.push(`export type Method =`);
  all.forEach(({ typeName }, i) => out.push(`  | ${typeName}${i === all.length - 1 ? ';' : ''}`));
  out.push('');
  out.push(`/** Human-readable names, e.g. 'basic.publish', for logs and error texts. */`);
  out.push(`export const METHOD_NAMES: ReadonlyMap<number, string> = new Map([`);
  for (const { cls, m, keyName } of all) out.push(`  [${keyName}, '${cls.name}.${m.name}'],`);
  out.push(`]);`);
  out.push('');
  out.push(`/** Methods followed by a content header and body frames. */`);
  out.push(`export function methodHasContent(key: number): boolean {`);
  out.push(`  switch (key) {`);
  for (const { m, keyName } of all) if (m.content) out.push(`    case ${keyName}:`);
  out.push(`      return true;`);
  out.push(`    default:`);
  out.push(`      return false;`);
  out.push(`  }`);
  out.push(`}`);
  out.push('');
  out.push(`/** The methods a synchronous request may be answered with. */`);
  out.push(`export const METHOD_RESPONSES: ReadonlyMap<number, readonly number[]> = new Map([`);
  for (const { cls, m, keyName } of all) {
    if (m.responses.length === 0) continue;
    const keys = m.responses.map((r) => `${upper(cls.name)}_${upper(r)}`);
    out.push(`  [${keyName}, [${keys.join(', ')}]],`);
  }
  out.push(`]);`);
  out.push('');
  out.push(`function truncated(key: number): never {`);
  out.push(`  throw new FrameError(\`cannot decode \${METHOD_NAMES.get(key) ?? 'content header'}: arguments run past the end of the frame\`);`);
  out.push(`}`);
  out.push('');
  out.push(`function writeUInt64(b: Buffer, o: number, value: number): void {`);
  out.push(`  b.writeUInt32BE(Math.floor(value / 4294967296), o);`);
  out.push(`  b.writeUInt32BE(value >>> 0, o + 4);`);
  out.push(`}`);
  out.push('');
  out.push(`// ---- Decoders ----`);
  for (const { cls, m, keyName, typeName } of all) out.push(genDecoder(cls, m, typeName, keyName));
  out.push('');
  out.push(`/** Decodes a method's arguments (after the class and method ids). Unknown key → undefined. */`);
  out.push(`export function decodeMethodArgs(key: number, b: Buffer, o: number, e: number): Method | undefined {`);
  out.push(`  switch (key) {`);
  for (const { keyName, typeName } of all) out.push(`    case ${keyName}:\n      return decode${typeName}(b, o, e);`);
  out.push(`    default:`);
  out.push(`      return undefined;`);
  out.push(`  }`);
  out.push(`}`);
  out.push('');
  out.push(`// ---- Sizes and writers ----`);
  for (const { m, typeName } of all) {
    out.push(genSize(m, typeName));
    out.push(genWriter(m, typeName));
  }
  out.push('');
  out.push(`/** Bytes of a method's arguments (excluding class and method ids). */`);
  out.push(`export function methodArgsSize(m: Method): number {`);
  out.push(`  switch (m.id) {`);
  for (const { keyName, typeName } of all) out.push(`    case ${keyName}:\n      return size${typeName}(m);`);
  out.push(`  }`);
  out.push(`}`);
  out.push('');
  out.push(`/** Writes a method's arguments at o; returns the offset after them. */`);
  out.push(`export function writeMethodArgs(b: Buffer, o: number, m: Method): number {`);
  out.push(`  switch (m.id) {`);
  for (const { keyName, typeName } of all) out.push(`    case ${keyName}:\n      return write${typeName}(b, o, m);`);
  out.push(`  }`);
  out.push(`}`);
  out.push('');
  out.push(`// ---- Content properties ----`);
  const basic = spec.classes.find((c) => c.name === 'basic');
  if (!basic) throw new Error('the basic class is missing from the spec');
  out.push(genProperties(basic));
  out.push('');
  return out.join('\n');
}

// Run directly: write the file.
if (process.argv[1] && fileURLToPath(import.meta.url).replace(/\.ts$/, '.js') === process.argv[1].replace(/\.ts$/, '.js')) {
  writeFileSync(OUTPUT_FILE, generate());
  console.log(`wrote ${OUTPUT_FILE}`);
}
