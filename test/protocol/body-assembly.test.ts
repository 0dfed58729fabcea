// Frame parser and command assembler together, wired as a connection wires them: published
// messages cut into socket reads at every awkward point (inside a frame header, inside body frames,
// on frame boundaries) come out with exactly their bodies. A body in one frame inside one read is a
// view into that read (no copy); every other body is allocated once at its announced size and each
// byte is copied into it once (no frame-sized intermediate buffers). Long property lists (headers
// tables, as task frameworks send) come out byte for byte too, as views into the read that held
// their header frame, whatever the reads before and after, and the CC/BCC scan reads them right.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { BodyAllowance, CommandAssembler, type Content } from '../../src/protocol/command-assembler.js';
import { encodeMethodFrame } from '../../src/protocol/frame-writer.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { Decimal, Timestamp, TypedValue, encodeTable, type FieldTable } from '../../src/protocol/field-table.js';
import { SCAN_HAS_BCC, SCAN_HAS_CC, scanRoutingHeaderKeys } from '../../src/protocol/table-scan.js';

const FRAME_MAX = 4096;
const MAX_PAYLOAD = FRAME_MAX - 8;

function frame(type: number, channel: number, payload: Buffer): Buffer {
  const buf = Buffer.alloc(payload.length + 8);
  buf[0] = type;
  buf.writeUInt16BE(channel, 1);
  buf.writeUInt32BE(payload.length, 3);
  payload.copy(buf, 7);
  buf[buf.length - 1] = M.FRAME_END;
  return buf;
}

/** basic.publish + content header + body frames (sizes given, or cut at frame_max). */
function publish(body: Buffer, frameSizes?: number[]): Buffer {
  const header = Buffer.alloc(14);
  header.writeUInt16BE(60, 0);
  header.writeUInt32BE(body.length, 8);
  const parts = [
    encodeMethodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'q', mandatory: false, immediate: false }),
    frame(2, 1, header),
  ];
  const sizes = frameSizes ?? [];
  if (frameSizes === undefined) for (let o = 0; o < body.length; o += MAX_PAYLOAD) sizes.push(Math.min(MAX_PAYLOAD, body.length - o));
  let offset = 0;
  for (const size of sizes) {
    parts.push(frame(3, 1, body.subarray(offset, offset + size)));
    offset += size;
  }
  return Buffer.concat(parts);
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** A parser and one channel's assembler, connected as Connection and Channel connect them. */
function pipeline(): { parser: FrameParser; contents: Content[]; allowance: BodyAllowance } {
  const contents: Content[] = [];
  const allowance = new BodyAllowance();
  const asm = new CommandAssembler(allowance);
  const take = (c: Content | null) => c !== null && contents.push(c);
  const parser = new FrameParser(
    FRAME_MAX,
    (type, _channel, buf, start, end) => {
      if (type === 1) {
        const method = M.decodeMethodArgs(buf.readUInt32BE(start), buf, start + 4, end)!;
        if (asm.onMethod(method, M.methodHasContent(method.id))) throw new Error('expected a content method');
      } else if (type === 2) take(asm.onHeader(buf, start, end));
      else if (type === 3) take(asm.onBody(buf, start, end));
    },
    (_channel, buf, start, end, payloadSize, first, last) => take(asm.onBodyPiece(buf, start, end, payloadSize, first, last)),
  );
  return { parser, contents, allowance };
}

/** Own ArrayBuffer per chunk: identity tells a view from a copy. */
function chunksAt(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [...cuts, stream.length];
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(Buffer.from(stream.subarray(prev, p)));
    prev = p;
  }
  return out;
}

afterEach(() => {
  vi.restoreAllMocks();
});

// The messages of one stream: empty, one byte, exactly one full frame, one byte over a frame,
// several frames, an empty body frame before the data, and a frame of the wrong size mix.
const bodies = [
  { body: Buffer.alloc(0) },
  { body: pattern(1, 1) },
  { body: pattern(MAX_PAYLOAD, 2) },
  { body: pattern(FRAME_MAX, 3) },
  { body: pattern(3 * MAX_PAYLOAD + 17, 4) },
  { body: pattern(10, 5), frames: [0, 10] },
  { body: pattern(600, 6), frames: [1, 299, 0, 300] },
];
const stream = Buffer.concat(bodies.map((b) => publish(b.body, b.frames)));
const expected = bodies.map((b) => b.body.toString('hex'));

describe('published messages cut into socket reads at every point', () => {
  it('one cut anywhere in the stream: every body exact', () => {
    for (let a = 0; a <= stream.length; a++) {
      const { parser, contents, allowance } = pipeline();
      for (const chunk of chunksAt(stream, [a])) parser.push(chunk);
      expect(contents.map((c) => c.body.toString('hex'))).toEqual(expected);
      expect(allowance.available).toBe(new BodyAllowance().available);
    }
  });

  it('reads of every size from 1 to 300 bytes: every body exact', () => {
    for (let size = 1; size <= 300; size++) {
      const cuts: number[] = [];
      for (let p = size; p < stream.length; p += size) cuts.push(p);
      const { parser, contents } = pipeline();
      for (const chunk of chunksAt(stream, cuts)) parser.push(chunk);
      expect(contents.map((c) => c.body.toString('hex'))).toEqual(expected);
    }
  });

  it('two cuts around each frame boundary (inside headers, on frame-end octets): every body exact', () => {
    const boundaries: number[] = [];
    for (let o = 0; o < stream.length; o += 8 + stream.readUInt32BE(o + 3)) boundaries.push(o);
    for (const b of boundaries) {
      for (let d1 = -2; d1 <= 8; d1++) {
        for (const d2 of [1, 3, 7, 9, 100, 4000]) {
          const a = b + d1;
          const c = a + d2;
          if (a <= 0 || c >= stream.length) continue;
          const { parser, contents } = pipeline();
          for (const chunk of chunksAt(stream, [a, c])) parser.push(chunk);
          expect(contents.map((x) => x.body.toString('hex'))).toEqual(expected);
        }
      }
    }
  });
});

describe('copies', () => {
  it('a body in one frame inside one read is a view into the read', () => {
    const one = publish(pattern(100, 9));
    const { parser, contents } = pipeline();
    parser.push(one);
    expect(contents[0]!.body.buffer).toBe(one.buffer);
  });

  it('a one-frame body whose frame straddles two reads is copied once into a body-sized buffer', () => {
    const body = pattern(3000, 10);
    const msg = publish(body);
    const { parser, contents } = pipeline();
    const allocated: number[] = [];
    const original = Buffer.allocUnsafe.bind(Buffer);
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => {
      allocated.push(n);
      return original(n);
    });
    const [a, b] = chunksAt(msg, [msg.length - 1000]);
    parser.push(a!);
    parser.push(b!);
    expect(contents[0]!.body.equals(body)).toBe(true);
    expect(allocated).toEqual([3000]);
  });

  it('a body of many frames, its frames straddling reads: one allocation of the body size, no frame buffers', () => {
    const body = pattern(40 * MAX_PAYLOAD + 123, 11);
    const msg = publish(body);
    const allocated: number[] = [];
    const original = Buffer.allocUnsafe.bind(Buffer);
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => {
      allocated.push(n);
      return original(n);
    });
    const copied = vi.spyOn(Buffer.prototype, 'copy');
    const { parser, contents } = pipeline();
    // reads of 2500 bytes: most body frames straddle two reads
    const cuts: number[] = [];
    for (let p = 2500; p < msg.length; p += 2500) cuts.push(p);
    const chunks = chunksAt(msg, cuts);
    copied.mockClear();
    allocated.length = 0;
    for (const chunk of chunks) parser.push(chunk);
    expect(contents[0]!.body.equals(body)).toBe(true);
    expect(allocated).toEqual([body.length]);
    // Every body byte copied exactly once (method and header frames straddling reads are copied
    // whole by the parser; they are not body bytes).
    const intoBody = copied.mock.calls.filter((call) => call[0] === contents[0]!.body);
    expect(intoBody.reduce((n, call) => n + ((call[3] as number) - (call[2] as number)), 0)).toBe(body.length);
  });
});

/** basic.publish + a content header carrying a headers table and delivery mode + one body frame. */
function publishWithHeaders(headers: FieldTable, body: Buffer): { bytes: Buffer; properties: Buffer } {
  const flags = (1 << 13) | (1 << 12);
  const properties = Buffer.concat([Buffer.from([flags >> 8, flags & 0xff]), encodeTable(headers), Buffer.from([2])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(60, 0);
  header.writeUInt32BE(body.length, 8);
  const bytes = Buffer.concat([
    encodeMethodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'q', mandatory: false, immediate: false }),
    frame(2, 1, Buffer.concat([header, properties])),
    frame(3, 1, body),
  ]);
  return { bytes, properties };
}

// The headers ampbench's S11 sends (strings, ints, nested tables), the same with CC and with BCC,
// and every other field type, nested inside tables and arrays.
const headerSets: { headers: FieldTable; scan: number }[] = [
  {
    headers: {
      'x-app-0': 'value-0-of-a-header',
      'retries-1': new TypedValue('I', 1),
      'meta-2': { origin: 'ampbench', n: new TypedValue('l', 2) },
      'x-app-3': 'value-3-of-a-header',
      'retries-4': new TypedValue('I', 4),
      'meta-5': { origin: 'ampbench', n: new TypedValue('l', 5) },
    },
    scan: 0,
  },
  { headers: { task: 'tasks.add', CC: ['k1', 'k2'], meta: { CC: ['nested, not routing'] } }, scan: SCAN_HAS_CC },
  { headers: { id: 'c5b0f7e2', BCC: ['hidden'], list: [{ BCC: ['nested'] }, 'x'] }, scan: SCAN_HAS_BCC },
  {
    headers: {
      bool: true,
      i8: new TypedValue('b', -2),
      u8: new TypedValue('B', 254),
      i16: new TypedValue('s', -2),
      u16: new TypedValue('u', 65534),
      f32: new TypedValue('f', 1.5),
      f64: 2.25,
      big: 2n ** 62n,
      when: new Timestamp(1_700_000_000),
      price: new Decimal(2, 12345),
      raw: Buffer.from([0, 1, 2, 0xce]),
      none: null,
      deep: [[{ a: [1, 'two', { b: new TypedValue('x', Buffer.from('bytes')) }] }], []],
      CC: ['k'],
      BCC: ['b'],
    },
    scan: SCAN_HAS_CC | SCAN_HAS_BCC,
  },
];

describe('long property lists (headers) cut into socket reads at every point', () => {
  const messages = headerSets.map((h, i) => ({ ...publishWithHeaders(h.headers, pattern(16 + i, 20 + i)), scan: h.scan }));
  const headerStream = Buffer.concat(messages.map((m) => m.bytes));

  /** Every message's property bytes, body and CC/BCC scan answer, after feeding these reads. */
  function feed(chunks: Buffer[]): { properties: string[]; bodies: string[]; scans: number[]; contents: Content[] } {
    const { parser, contents } = pipeline();
    for (const chunk of chunks) parser.push(chunk);
    return {
      properties: contents.map((c) => c.rawProperties.toString('hex')),
      bodies: contents.map((c) => c.body.toString('hex')),
      // the headers table starts right after the two flag bytes (no content-type or -encoding)
      scans: contents.map((c) => scanRoutingHeaderKeys(c.rawProperties, 2, c.rawProperties.length)),
      contents,
    };
  }

  it('each property list is longer than the lists shared between messages (so it is a view or a copy)', () => {
    for (const m of messages) expect(m.properties.length).toBeGreaterThan(32);
  });

  it('one cut anywhere, and reads of every size from 1 to 64 bytes: every property list, body and scan exact', () => {
    const expected = {
      properties: messages.map((m) => m.properties.toString('hex')),
      bodies: messages.map((_, i) => pattern(16 + i, 20 + i).toString('hex')),
      scans: messages.map((m) => m.scan),
    };
    expect(expected.scans).toEqual([0, SCAN_HAS_CC, SCAN_HAS_BCC, SCAN_HAS_CC | SCAN_HAS_BCC]);
    for (let a = 0; a <= headerStream.length; a++) {
      const got = feed(chunksAt(headerStream, [a]));
      expect({ properties: got.properties, bodies: got.bodies, scans: got.scans }).toEqual(expected);
    }
    for (let size = 1; size <= 64; size++) {
      const cuts: number[] = [];
      for (let p = size; p < headerStream.length; p += size) cuts.push(p);
      const got = feed(chunksAt(headerStream, cuts));
      expect({ properties: got.properties, bodies: got.bodies, scans: got.scans }).toEqual(expected);
    }
  });

  it('a header frame inside one read gives a view into that read, read after read', () => {
    // each message in a read of its own: the views alternate between different reads' memory
    const reads = messages.map((m) => Buffer.from(m.bytes));
    const { contents } = feed(reads);
    contents.forEach((c, i) => {
      expect(c.rawProperties.buffer).toBe(reads[i]!.buffer);
      expect(c.body.buffer).toBe(reads[i]!.buffer);
      expect(c.rawProperties.equals(messages[i]!.properties)).toBe(true);
    });
  });
});
