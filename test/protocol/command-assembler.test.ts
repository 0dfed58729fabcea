// The per-channel content state machine, table-driven: method → header → body* → Content, with
// 505 UNEXPECTED_FRAME for frames out of order (and a header of the wrong class, as RabbitMQ) and
// 501 FRAME_ERROR for malformed content. Reply texts are RabbitMQ's (rabbit_command_assembler), and
// errors raised while a content method is pending carry that method's class and method ids.

import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import {
  BODY_ALLOWANCE_BYTES,
  BodyAllowance,
  CommandAssembler,
  SHARED_PROPERTIES_MAX_BYTES,
  type Content,
} from '../../src/protocol/command-assembler.js';
import { AmqpException, FrameError, UnexpectedFrame } from '../../src/protocol/errors.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import * as A from '../../src/protocol/generated/amqp.js';
import type { Method } from '../../src/protocol/generated/amqp.js';

const publish: Method = { id: A.BASIC_PUBLISH, reserved1: 0, exchange: 'ex', routingKey: 'rk', mandatory: false, immediate: false };
const ack: Method = { id: A.BASIC_ACK, deliveryTag: 1, multiple: false };
const qos: Method = { id: A.BASIC_QOS, prefetchSize: 0, prefetchCount: 10, global: false };
const PROPS = encodeBasicProperties({ contentType: 'text/plain', deliveryMode: 2, headers: { a: 1 } });

/** Frames are built inside a larger buffer, with bytes before and after, to exercise offsets. */
interface Slice {
  buf: Buffer;
  start: number;
  end: number;
}
function embed(payload: Buffer): Slice {
  const buf = Buffer.alloc(payload.length + 10, 0xee);
  payload.copy(buf, 7);
  return { buf, start: 7, end: 7 + payload.length };
}

function headerPayload(bodySize: number, opts: { classId?: number; props?: Buffer; weight?: number } = {}): Buffer {
  const props = opts.props ?? PROPS;
  const b = Buffer.alloc(12 + props.length);
  b.writeUInt16BE(opts.classId ?? A.CLASS_BASIC, 0);
  b.writeUInt16BE(opts.weight ?? 0, 2);
  b.writeUInt32BE(Math.floor(bodySize / 2 ** 32), 4);
  b.writeUInt32BE(bodySize >>> 0, 8);
  props.copy(b, 12);
  return b;
}

type Step =
  | { method: Method }
  | { header: Buffer }
  | { body: string } // as text, for readable tables
  | { reset: true };

type Outcome =
  | 'run' // onMethod returned true: the caller runs the method now
  | 'held' // onMethod returned false: a content method waits for its content
  | 'wait' // onHeader/onBody returned null
  | { body: string; bodySize: number } // a completed Content
  | AssemblerError;

interface AssemblerError {
  error: 501 | 505;
  text: string;
  /** [classId, methodId] the error is attributed to */
  at: [number, number];
}

const PUBLISH_AT: [number, number] = [60, 40];
const EXPECT_METHOD: AssemblerError = {
  error: 505,
  text: 'UNEXPECTED_FRAME - expected method frame, got non method frame instead',
  at: [0, 0],
};
const EXPECT_HEADER: AssemblerError = {
  error: 505,
  text: 'UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead',
  at: PUBLISH_AT,
};
const EXPECT_BODY: AssemblerError = {
  error: 505,
  text: 'UNEXPECTED_FRAME - expected content body, got non content body frame instead',
  at: PUBLISH_AT,
};
const tooLong = (size: number): AssemblerError => ({
  error: 501,
  text: `FRAME_ERROR - content body is longer than the ${size} bytes its header announced`,
  at: PUBLISH_AT,
});

interface Case {
  name: string;
  steps: [Step, Outcome][];
  busyAfter: boolean;
}

const H = (size: number, opts?: Parameters<typeof headerPayload>[1]): Step => ({ header: headerPayload(size, opts) });
const B = (text: string): Step => ({ body: text });
const M = (method: Method): Step => ({ method });

const CASES: Case[] = [
  { name: 'a non-content method passes straight through', steps: [[M(ack), 'run'], [M(qos), 'run']], busyAfter: false },
  {
    name: 'publish → header(size 0) completes with an empty body',
    steps: [
      [M(publish), 'held'],
      [H(0), { body: '', bodySize: 0 }],
    ],
    busyAfter: false,
  },
  {
    name: 'publish → header → one body frame',
    steps: [
      [M(publish), 'held'],
      [H(5), 'wait'],
      [B('hello'), { body: 'hello', bodySize: 5 }],
    ],
    busyAfter: false,
  },
  {
    name: 'publish → header → several body frames are joined in order',
    steps: [
      [M(publish), 'held'],
      [H(11), 'wait'],
      [B('hel'), 'wait'],
      [B('lo '), 'wait'],
      [B(''), 'wait'],
      [B('world'), { body: 'hello world', bodySize: 11 }],
    ],
    busyAfter: false,
  },
  {
    name: 'an empty body frame before the only data frame',
    steps: [
      [M(publish), 'held'],
      [H(3), 'wait'],
      [B(''), 'wait'],
      [B('abc'), { body: 'abc', bodySize: 3 }],
    ],
    busyAfter: false,
  },
  {
    name: 'two messages back to back, then a non-content method',
    steps: [
      [M(publish), 'held'],
      [H(2), 'wait'],
      [B('a'), 'wait'],
      [B('b'), { body: 'ab', bodySize: 2 }],
      [M(publish), 'held'],
      [H(0), { body: '', bodySize: 0 }],
      [M(publish), 'held'],
      [H(1), 'wait'],
      [B('z'), { body: 'z', bodySize: 1 }],
      [M(ack), 'run'],
    ],
    busyAfter: false,
  },
  {
    name: 'a single body frame longer than announced → 501',
    steps: [
      [M(publish), 'held'],
      [H(5), 'wait'],
      [B('hello!'), tooLong(5)],
    ],
    busyAfter: true,
  },
  {
    name: 'body frames adding up to more than announced → 501',
    steps: [
      [M(publish), 'held'],
      [H(5), 'wait'],
      [B('hel'), 'wait'],
      [B('lo!'), tooLong(5)],
    ],
    busyAfter: true,
  },
  { name: 'a header without a method → 505', steps: [[H(0), EXPECT_METHOD]], busyAfter: false },
  { name: 'a body without a method → 505', steps: [[B('x'), EXPECT_METHOD]], busyAfter: false },
  {
    name: 'a body while waiting for the header → 505',
    steps: [
      [M(publish), 'held'],
      [B('x'), EXPECT_HEADER],
    ],
    busyAfter: true,
  },
  {
    name: 'a method while waiting for the header → 505',
    steps: [
      [M(publish), 'held'],
      [M(ack), EXPECT_HEADER],
    ],
    busyAfter: true,
  },
  {
    name: 'another content method while waiting for the header → 505',
    steps: [
      [M(publish), 'held'],
      [M(publish), EXPECT_HEADER],
    ],
    busyAfter: true,
  },
  {
    name: 'a method while waiting for the body → 505',
    steps: [
      [M(publish), 'held'],
      [H(3), 'wait'],
      [B('a'), 'wait'],
      [M(qos), EXPECT_BODY],
    ],
    busyAfter: true,
  },
  {
    name: 'a second header while waiting for the body → 505',
    steps: [
      [M(publish), 'held'],
      [H(3), 'wait'],
      [H(3), EXPECT_BODY],
    ],
    busyAfter: true,
  },
  {
    name: 'a header whose class-id is not the method\'s → 505',
    steps: [
      [M(publish), 'held'],
      [
        H(3, { classId: A.CLASS_QUEUE }),
        { error: 505, text: 'UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead', at: PUBLISH_AT },
      ],
    ],
    busyAfter: true,
  },
  {
    name: 'a header shorter than 14 bytes → 501',
    steps: [
      [M(publish), 'held'],
      [{ header: headerPayload(0).subarray(0, 13) }, { error: 501, text: 'FRAME_ERROR - content header shorter than 14 bytes', at: PUBLISH_AT }],
    ],
    busyAfter: true,
  },
  {
    // RabbitMQ matches content headers with weight 0 only; anything else is "not a content header".
    name: 'a header with a non-zero weight → 505',
    steps: [
      [M(publish), 'held'],
      [H(3, { weight: 1 }), EXPECT_HEADER],
    ],
    busyAfter: true,
  },
  {
    name: 'reset() while waiting for the header drops the publish',
    steps: [
      [M(publish), 'held'],
      [{ reset: true }, 'wait'],
      [M(ack), 'run'],
      [B('x'), EXPECT_METHOD],
    ],
    busyAfter: false,
  },
  {
    name: 'reset() while waiting for the body drops the partial body',
    steps: [
      [M(publish), 'held'],
      [H(4), 'wait'],
      [B('ab'), 'wait'],
      [{ reset: true }, 'wait'],
      [B('cd'), EXPECT_METHOD],
      [M(publish), 'held'],
      [H(4), 'wait'],
      [B('wxyz'), { body: 'wxyz', bodySize: 4 }],
    ],
    busyAfter: false,
  },
];

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** pieces: body frames arrive as two pieces (split across socket reads, see FrameParser) */
function run(asm: CommandAssembler, step: Step, pieces: boolean): Outcome | Content {
  if ('reset' in step) {
    asm.reset();
    return 'wait';
  }
  let result: boolean | Content | null = null;
  const err = errorOf(() => {
    if ('method' in step) result = asm.onMethod(step.method, A.methodHasContent(step.method.id));
    else if ('header' in step) {
      const s = embed(step.header);
      result = asm.onHeader(s.buf, s.start, s.end);
    } else if (!pieces) {
      const s = embed(Buffer.from(step.body));
      result = asm.onBody(s.buf, s.start, s.end);
    } else {
      const s = embed(Buffer.from(step.body));
      const mid = s.start + ((s.end - s.start) >> 1);
      expect(asm.onBodyPiece(s.buf, s.start, mid, s.end - s.start, true, false)).toBeNull();
      result = asm.onBodyPiece(s.buf, mid, s.end, s.end - s.start, false, true);
    }
  });
  if (err !== undefined) {
    expect(err).toBeInstanceOf(AmqpException);
    const e = err as AmqpException;
    expect(err).toBeInstanceOf(e.replyCode === 501 ? FrameError : UnexpectedFrame);
    return { error: e.replyCode as 501 | 505, text: e.replyText, at: [e.classId, e.methodId] };
  }
  if (result === true) return 'run';
  if (result === false) return 'held';
  if (result === null) return 'wait';
  return result;
}

describe.each([
  ['whole body frames', false],
  ['body frames in two pieces (split across reads)', true],
])('CommandAssembler transitions, %s', (_name, pieces) => {
  for (const { name, steps, busyAfter } of CASES) it(name, () => {
    const asm = new CommandAssembler();
    expect(asm.busy).toBe(false);
    for (const [step, expected] of steps) {
      const got = run(asm, step, pieces);
      if (typeof expected === 'object' && 'body' in expected) {
        expect(typeof got).toBe('object');
        const content = got as Content;
        expect(content.method).toBe(publish);
        expect(content.classId).toBe(A.CLASS_BASIC);
        expect(content.bodySize).toBe(expected.bodySize);
        expect(content.body.toString()).toBe(expected.body);
        expect(content.body.length).toBe(expected.bodySize);
        expect(content.rawProperties.equals(PROPS)).toBe(true);
        expect(asm.busy).toBe(false);
        expect(asm.pendingMethod).toBeNull();
      } else {
        expect(got).toEqual(expected);
      }
    }
    expect(asm.busy).toBe(busyAfter);
  });
});

describe('CommandAssembler details', () => {
  it('holds the content method and reports it while busy', () => {
    const asm = new CommandAssembler();
    expect(asm.pendingMethod).toBeNull();
    expect(asm.describePending()).toBe('none');
    expect(asm.onMethod(publish, true)).toBe(false);
    expect(asm.busy).toBe(true);
    expect(asm.pendingMethod).toBe(publish);
    expect(asm.describePending()).toBe('basic.publish');
    asm.reset();
    expect(asm.busy).toBe(false);
    expect(asm.pendingMethod).toBeNull();
  });

  it('a body in a single frame is a view into that frame (no copy)', () => {
    const asm = new CommandAssembler();
    asm.onMethod(publish, true);
    const h = embed(headerPayload(5));
    expect(asm.onHeader(h.buf, h.start, h.end)).toBeNull();
    const b = embed(Buffer.from('hello'));
    const content = asm.onBody(b.buf, b.start, b.end)!;
    expect(content.body.buffer).toBe(b.buf.buffer);
    expect(content.body.byteOffset).toBe(b.buf.byteOffset + b.start);
    expect(content.body.length).toBe(5);
  });

  it('a body in several frames is joined once into a buffer of its own', () => {
    const asm = new CommandAssembler();
    asm.onMethod(publish, true);
    const h = embed(headerPayload(6));
    asm.onHeader(h.buf, h.start, h.end);
    const parts = ['ab', 'cd', 'ef'].map((t) => embed(Buffer.from(t)));
    let content: Content | null = null;
    for (const p of parts) content = asm.onBody(p.buf, p.start, p.end);
    expect(content!.body.toString()).toBe('abcdef');
    for (const p of parts) expect(content!.body.buffer).not.toBe(p.buf.buffer);
    // changing the frames afterwards does not change the joined body
    for (const p of parts) p.buf.fill(0);
    expect(content!.body.toString()).toBe('abcdef');
  });

  it('rawProperties are the header bytes after body-size, exactly as sent', () => {
    const props = encodeBasicProperties({ messageId: 'm-1', priority: 3, timestamp: 1700000000 });
    const asm = new CommandAssembler();
    asm.onMethod(publish, true);
    const h = embed(headerPayload(0, { props }));
    const content = asm.onHeader(h.buf, h.start, h.end)!;
    expect(content.rawProperties.toString('hex')).toBe(props.toString('hex'));
    expect(A.decodeBasicProperties(content.rawProperties, 0, content.rawProperties.length)).toStrictEqual({
      messageId: 'm-1',
      priority: 3,
      timestamp: 1700000000,
    });
  });

  it('never allocates the announced body-size beyond what arrived plus the connection allowance', () => {
    // body-size comes from the client (max message size is checked by the channel, and may be
    // configured high): one header frame must not claim that much memory. Channels of one
    // connection share one allowance for room ahead of the bytes.
    const original = Buffer.allocUnsafe.bind(Buffer);
    const sizes: number[] = [];
    const spy = vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((size: number) => {
      sizes.push(size);
      return original(size);
    });
    try {
      const allowance = new BodyAllowance();
      const first = new CommandAssembler(allowance);
      const second = new CommandAssembler(allowance);
      const b = embed(Buffer.from('0123456789'));
      for (const asm of [first, second]) {
        asm.onMethod(publish, true);
        const h = embed(headerPayload(2 ** 30));
        expect(asm.onHeader(h.buf, h.start, h.end)).toBeNull();
        expect(asm.onBody(b.buf, b.start, b.end)).toBeNull();
        expect(asm.onBody(b.buf, b.start, b.end)).toBeNull();
        expect(asm.busy).toBe(true);
      }
      // The first body takes the whole allowance; the second, with none left, only what arrived,
      // then room for as much again as had arrived (20 arrived: 30 bytes).
      expect(sizes).toEqual([10 + BODY_ALLOWANCE_BYTES, 10, 30]);
      expect(allowance.available).toBe(0);
      // Without allowance the body grows only when full, to about twice what arrived.
      sizes.length = 0;
      expect(second.onBody(b.buf, b.start, b.end)).toBeNull();
      expect(sizes).toEqual([]);
      expect(second.onBody(b.buf, b.start, b.end)).toBeNull();
      expect(sizes).toEqual([70]);
      // A dropped command (channel closed) gives its share back.
      first.reset();
      expect(allowance.available).toBe(BODY_ALLOWANCE_BYTES);
    } finally {
      spy.mockRestore();
    }
  });

  it('reads a 64-bit body-size (> 2^32) and keeps waiting for it', () => {
    const asm = new CommandAssembler();
    asm.onMethod(publish, true);
    const h = embed(headerPayload(2 ** 32 + 5));
    expect(asm.onHeader(h.buf, h.start, h.end)).toBeNull();
    expect(asm.busy).toBe(true);
    const b = embed(Buffer.alloc(10));
    // not complete and not too long: still waiting
    expect(asm.onBody(b.buf, b.start, b.end)).toBeNull();
  });

  it('errors are connection errors (hard)', () => {
    const asm = new CommandAssembler();
    const err = errorOf(() => asm.onBody(Buffer.alloc(1), 0, 1)) as UnexpectedFrame;
    expect(err).toBeInstanceOf(UnexpectedFrame);
    expect(err.hard).toBe(true);
  });
});

describe('short property lists shared while they repeat (CommandAssembler.propertiesAt)', () => {
  /** Header-only messages (body-size 0) with these property bytes; returns each one's rawProperties. */
  function propertiesOf(asm: CommandAssembler, lists: readonly Buffer[]): { frames: Slice[]; props: Buffer[] } {
    const frames: Slice[] = [];
    const props: Buffer[] = [];
    for (const list of lists) {
      asm.onMethod(publish, true);
      const h = embed(headerPayload(0, { props: list }));
      frames.push(h);
      props.push(asm.onHeader(h.buf, h.start, h.end)!.rawProperties);
    }
    return { frames, props };
  }

  it('gives a repeated short list the same buffer of its own, not a view into the frame', () => {
    const list = Buffer.from([0x10, 0x00, 0x01]); // delivery-mode 1
    const { frames, props } = propertiesOf(new CommandAssembler(), [list, list, list]);
    expect(props[1]).toBe(props[0]);
    expect(props[2]).toBe(props[0]);
    expect(props[0]!.buffer).not.toBe(frames[0]!.buf.buffer);
    expect(props[0]!.buffer.byteLength).toBe(3); // pins nothing larger
    for (const f of frames) f.buf.fill(0);
    expect(props[0]!.toString('hex')).toBe('100001');
  });

  it('copies a short list that differs, leaving the earlier messages their own bytes', () => {
    const a = Buffer.from([0x10, 0x00, 0x01]);
    const b = Buffer.from([0x10, 0x00, 0x02]);
    const { frames, props } = propertiesOf(new CommandAssembler(), [a, b, a]);
    for (const f of frames) f.buf.fill(0);
    expect(props.map((p) => p.toString('hex'))).toEqual(['100001', '100002', '100001']);
    expect(props[1]).not.toBe(props[0]);
    expect(props[2]).not.toBe(props[1]);
  });

  it('keeps a list longer than the limit as a view into the frame, as before', () => {
    const limit = encodeBasicProperties({ messageId: 'x'.repeat(SHARED_PROPERTIES_MAX_BYTES - 3) }); // flags + length octet + id
    const longer = encodeBasicProperties({ messageId: 'x'.repeat(SHARED_PROPERTIES_MAX_BYTES - 2) });
    expect(limit.length).toBe(SHARED_PROPERTIES_MAX_BYTES);
    expect(longer.length).toBe(SHARED_PROPERTIES_MAX_BYTES + 1);
    const asm = new CommandAssembler();
    const { frames, props } = propertiesOf(asm, [limit, limit, longer, longer]);
    expect(props[1]).toBe(props[0]);
    expect(props[2]!.buffer).toBe(frames[2]!.buf.buffer);
    expect(props[3]!.buffer).toBe(frames[3]!.buf.buffer);
    expect(props[3]!.equals(longer)).toBe(true);
  });

  it('every message has exactly its own property bytes, whatever the sequence of lists', () => {
    const list = fc.uint8Array({ minLength: 2, maxLength: SHARED_PROPERTIES_MAX_BYTES + 4 }).map((u) => Buffer.from(u));
    fc.assert(
      fc.property(fc.array(list, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(5), { minLength: 1, maxLength: 20 }), (lists, picks) => {
        const sequence = picks.map((i) => lists[i % lists.length]!);
        const { frames, props } = propertiesOf(new CommandAssembler(), sequence);
        const short = props.filter((p) => p.length <= SHARED_PROPERTIES_MAX_BYTES);
        for (const p of short) expect(p.buffer.byteLength).toBe(p.length);
        for (let i = 0; i < sequence.length; i++) expect(props[i]!.equals(sequence[i]!)).toBe(true);
        // Short lists are the assembler's own bytes: the frames going away does not touch them.
        for (const f of frames) f.buf.fill(0xaa);
        for (let i = 0; i < sequence.length; i++) {
          if (sequence[i]!.length <= SHARED_PROPERTIES_MAX_BYTES) expect(props[i]!.equals(sequence[i]!)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
