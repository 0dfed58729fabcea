// Frame parser and command assembler together, wired as a connection wires them: published
// messages cut into socket reads at every awkward point (inside a frame header, inside body frames,
// on frame boundaries) come out with exactly their bodies. A body in one frame inside one read is a
// view into that read (no copy); every other body is allocated once at its announced size and each
// byte is copied into it once (no frame-sized intermediate buffers).

import { afterEach, describe, expect, it, vi } from 'vitest';
import { BodyAllowance, CommandAssembler, type Content } from '../../src/protocol/command-assembler.js';
import { encodeMethodFrame } from '../../src/protocol/frame-writer.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import * as M from '../../src/protocol/generated/amqp.js';

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
