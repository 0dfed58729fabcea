// Socket chunks → frames. The same byte stream cut at random points must parse to exactly the
// frames of the whole stream; frames wholly inside a chunk are views into it (no copy), frames split
// across chunks are copied into a buffer of their own; bad frame-end and oversize payloads are 501
// with RabbitMQ's reply texts (rabbit_reader: "type ~p, ~s octets = ~p: ~p").

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AmqpException, FrameError } from '../../src/protocol/errors.js';
import { FRAME_HEADER_SIZE, FRAME_OVERHEAD, FrameParser } from '../../src/protocol/frame-parser.js';
import { FRAME_END } from '../../src/protocol/generated/amqp.js';

interface Spec {
  type: number;
  channel: number;
  payload: Uint8Array;
}

interface Seen {
  type: number;
  channel: number;
  buf: Buffer;
  start: number;
  end: number;
}

/** Builds the stream in one non-pooled buffer and returns each frame's offset in it. */
function buildStream(frames: readonly Spec[], frameEnd = FRAME_END): { stream: Buffer; offsets: number[] } {
  const total = frames.reduce((n, f) => n + FRAME_OVERHEAD + f.payload.length, 0);
  const stream = Buffer.alloc(total);
  const offsets: number[] = [];
  let pos = 0;
  for (const f of frames) {
    offsets.push(pos);
    stream[pos] = f.type;
    stream.writeUInt16BE(f.channel, pos + 1);
    stream.writeUInt32BE(f.payload.length, pos + 3);
    stream.set(f.payload, pos + 7);
    stream[pos + 7 + f.payload.length] = frameEnd;
    pos += FRAME_OVERHEAD + f.payload.length;
  }
  return { stream, offsets };
}

/** Each chunk gets its own ArrayBuffer, so buffer identity tells a view from a copy. */
function cut(stream: Buffer, cuts: readonly number[]): { chunks: Buffer[]; starts: number[] } {
  const points = [...cuts.map((c) => c % (stream.length + 1)), stream.length].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  const starts: number[] = [];
  let prev = 0;
  for (const p of points) {
    const chunk = Buffer.alloc(p - prev);
    stream.copy(chunk, 0, prev, p);
    chunks.push(chunk);
    starts.push(prev);
    prev = p;
  }
  return { chunks, starts };
}

function collector(maxPayloadSize = 131072): { parser: FrameParser; seen: Seen[] } {
  const seen: Seen[] = [];
  const parser = new FrameParser(maxPayloadSize, (type, channel, buf, start, end) => seen.push({ type, channel, buf, start, end }));
  return { parser, seen };
}

const plain = (s: Seen) => ({
  type: s.type,
  channel: s.channel,
  payload: Buffer.from(s.buf.subarray(s.start, s.end)).toString('hex'),
});
const plainSpec = (f: Spec) => ({ type: f.type, channel: f.channel, payload: Buffer.from(f.payload).toString('hex') });

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an exception, none was thrown');
}

function expectFrameError(fn: () => unknown): FrameError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(FrameError);
  expect((err as AmqpException).replyCode).toBe(501);
  return err as FrameError;
}

const frameArb: fc.Arbitrary<Spec> = fc.record({
  type: fc.constantFrom(1, 2, 3, 8),
  channel: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 1, 0xffff)),
  payload: fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 5000 }) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 16 }) },
    // payloads full of frame-end octets must not confuse the parser
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 300 }).map((n) => new Uint8Array(n).fill(FRAME_END)) },
  ),
});

// ---------------------------------------------------------------------------------------------

describe('a stream cut at random points parses like the whole stream', () => {
  it('same frames, views for frames inside one chunk, copies of exact size otherwise, correct bufferedBytes', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
        const { stream, offsets } = buildStream(frames);

        const whole = collector();
        whole.parser.push(stream);
        expect(whole.parser.bufferedBytes).toBe(0);
        expect(whole.seen.map(plain)).toEqual(frames.map(plainSpec));
        for (const s of whole.seen) expect(s.buf).toBe(stream);

        const { chunks, starts } = cut(stream, cuts);
        const chunked = collector();
        const frameEnds = offsets.map((o, i) => o + FRAME_OVERHEAD + frames[i]!.payload.length);
        let pushed = 0;
        chunks.forEach((chunk) => {
          chunked.parser.push(chunk);
          pushed += chunk.length;
          const complete = frameEnds.filter((e) => e <= pushed);
          expect(chunked.seen).toHaveLength(complete.length);
          expect(chunked.parser.bufferedBytes).toBe(pushed - (complete.at(-1) ?? 0));
        });
        expect(chunked.parser.bufferedBytes).toBe(0);

        // Payloads are read only now, after the parser has moved on: views and copies stay valid.
        expect(chunked.seen.map(plain)).toEqual(frames.map(plainSpec));

        chunked.seen.forEach((s, i) => {
          const fs = offsets[i]!;
          const fe = frameEnds[i]!;
          const c = starts.findIndex((cs, k) => cs <= fs && fe <= cs + chunks[k]!.length);
          if (c >= 0) {
            // wholly inside chunk c: a view into that very chunk, no copy
            expect(s.buf).toBe(chunks[c]);
            expect(s.buf.buffer).toBe(chunks[c]!.buffer);
            expect(s.start).toBe(fs - starts[c]! + FRAME_HEADER_SIZE);
            expect(s.end).toBe(fe - starts[c]! - 1);
          } else {
            // split: copied once into a frame-sized buffer that belongs to no chunk
            for (const chunk of chunks) expect(s.buf.buffer).not.toBe(chunk.buffer);
            expect(s.buf.length).toBe(fe - fs);
            expect(s.start).toBe(FRAME_HEADER_SIZE);
            expect(s.end).toBe(fe - fs - 1);
          }
        });
      }),
      { numRuns: 200 },
    );
  });

  it('a stream fed one byte at a time parses to the same frames', () => {
    const frames: Spec[] = [
      { type: 1, channel: 0, payload: Uint8Array.from([0, 10, 0, 11]) },
      { type: 8, channel: 0, payload: new Uint8Array(0) },
      { type: 2, channel: 7, payload: new Uint8Array(20).fill(0xce) },
      { type: 3, channel: 65535, payload: Uint8Array.from({ length: 300 }, (_, i) => i & 0xff) },
    ];
    const { stream, offsets } = buildStream(frames);
    const { parser, seen } = collector();
    for (let i = 0; i < stream.length; i++) {
      parser.push(stream.subarray(i, i + 1));
      const pushed = i + 1;
      const current = offsets.filter((o) => o < pushed).length - 1; // frame the last byte belongs to
      const start = offsets[current]!;
      const complete = pushed === start + FRAME_OVERHEAD + frames[current]!.payload.length;
      expect(seen).toHaveLength(complete ? current + 1 : current);
      expect(parser.bufferedBytes).toBe(complete ? 0 : pushed - start);
    }
    expect(seen.map(plain)).toEqual(frames.map(plainSpec));
    expect(parser.bufferedBytes).toBe(0);
  });

  it('an empty chunk changes nothing', () => {
    const { stream } = buildStream([{ type: 1, channel: 1, payload: Uint8Array.from([1, 2, 3]) }]);
    const { parser, seen } = collector();
    parser.push(Buffer.alloc(0));
    parser.push(stream.subarray(0, 5));
    parser.push(Buffer.alloc(0));
    expect(parser.bufferedBytes).toBe(5);
    parser.push(stream.subarray(5));
    parser.push(Buffer.alloc(0));
    expect(seen.map(plain)).toEqual([{ type: 1, channel: 1, payload: '010203' }]);
  });
});

describe('bufferedBytes', () => {
  const frame = buildStream([{ type: 3, channel: 2, payload: new Uint8Array(10).fill(7) }]).stream; // 18 bytes

  it('counts held bytes while the header is incomplete, then while the payload is incomplete', () => {
    const { parser, seen } = collector();
    expect(parser.bufferedBytes).toBe(0);
    parser.push(frame.subarray(0, 3));
    expect(parser.bufferedBytes).toBe(3);
    parser.push(frame.subarray(3, 6));
    expect(parser.bufferedBytes).toBe(6);
    parser.push(frame.subarray(6, 12)); // header completes inside this chunk
    expect(parser.bufferedBytes).toBe(12);
    parser.push(frame.subarray(12, 17));
    expect(parser.bufferedBytes).toBe(17);
    expect(seen).toHaveLength(0);
    parser.push(frame.subarray(17));
    expect(parser.bufferedBytes).toBe(0);
    expect(seen).toHaveLength(1);
  });

  it('counts the start of the next frame after complete ones in the same chunk', () => {
    const { parser, seen } = collector();
    parser.push(Buffer.concat([frame, frame, frame.subarray(0, 9)]));
    expect(seen).toHaveLength(2);
    expect(parser.bufferedBytes).toBe(9);
    parser.push(Buffer.concat([frame.subarray(9), frame.subarray(0, 2)]));
    expect(seen).toHaveLength(3);
    expect(parser.bufferedBytes).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad frame-end → FrameError 501', () => {
  const bad = buildStream([{ type: 1, channel: 1, payload: Uint8Array.from([0, 60, 0, 40]) }], 0x00).stream;
  const good = buildStream([{ type: 1, channel: 1, payload: Uint8Array.from([0, 60, 0, 40]) }]).stream;
  // RabbitMQ: "type ~p, ~s octets = ~p: ~p" with {invalid_frame_end_marker, Octet}
  const TEXT = 'FRAME_ERROR - type 1, all octets = <<0,60,0,40>>: {invalid_frame_end_marker,0}';

  it('in a frame wholly inside one chunk', () => {
    const { parser, seen } = collector();
    expect(expectFrameError(() => parser.push(bad)).replyText).toBe(TEXT);
    expect(seen).toHaveLength(0);
  });

  it('after good frames in the same chunk (the good ones are delivered first)', () => {
    const { parser, seen } = collector();
    expect(expectFrameError(() => parser.push(Buffer.concat([good, bad]))).replyText).toBe(TEXT);
    expect(seen).toHaveLength(1);
  });

  it('in a frame split across chunks', () => {
    const { parser, seen } = collector();
    parser.push(bad.subarray(0, 9));
    expect(expectFrameError(() => parser.push(bad.subarray(9))).replyText).toBe(TEXT);
    expect(seen).toHaveLength(0);
  });

  it('in a frame whose header was split', () => {
    const { parser } = collector();
    parser.push(bad.subarray(0, 2));
    parser.push(bad.subarray(2, 5));
    expect(expectFrameError(() => parser.push(bad.subarray(5))).replyText).toBe(TEXT);
  });

  it('when the frame-end is the only byte of the last chunk', () => {
    const { parser } = collector();
    parser.push(bad.subarray(0, bad.length - 1));
    expect(expectFrameError(() => parser.push(bad.subarray(bad.length - 1))).replyText).toBe(TEXT);
  });

  it('a printable payload is shown as an Erlang string', () => {
    const frame = buildStream([{ type: 3, channel: 1, payload: Buffer.from('hello') }], 0x41).stream;
    const { parser } = collector();
    expect(expectFrameError(() => parser.push(frame)).replyText).toBe(
      'FRAME_ERROR - type 3, all octets = <<"hello">>: {invalid_frame_end_marker,65}',
    );
  });

  it('a payload longer than 16 octets is shown by its first 16, as RabbitMQ does', () => {
    const payload = Uint8Array.from({ length: 20 }, (_, i) => i);
    const frame = buildStream([{ type: 3, channel: 1, payload }], 0xff).stream;
    const { parser } = collector();
    expect(expectFrameError(() => parser.push(frame)).replyText).toBe(
      'FRAME_ERROR - type 3, first 16 octets = <<0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15>>: {invalid_frame_end_marker,255}',
    );
  });
});

describe('payloads larger than frame_max → FrameError 501 (RabbitMQ\'s limit: payload ≤ frame_max)', () => {
  const MAX = 4096;
  const withPayload = (n: number) => buildStream([{ type: 3, channel: 1, payload: new Uint8Array(n) }]).stream;
  // RabbitMQ reports {frame_too_large, PayloadSize, FrameMax - 8}
  const TEXT = 'FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}';

  it('a payload of exactly frame_max bytes is accepted (frame_max + 8 bytes on the wire)', () => {
    const { parser, seen } = collector(MAX);
    parser.push(withPayload(MAX));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.end - seen[0]!.start).toBe(MAX);
  });

  it('one byte more is refused when the whole frame is in the chunk', () => {
    const { parser, seen } = collector(MAX);
    expect(expectFrameError(() => parser.push(withPayload(MAX + 1))).replyText).toBe(TEXT);
    expect(seen).toHaveLength(0);
  });

  it('is refused as soon as the 7-byte header has arrived', () => {
    const { parser } = collector(MAX);
    expect(expectFrameError(() => parser.push(withPayload(MAX + 1).subarray(0, FRAME_HEADER_SIZE))).replyText).toBe(TEXT);
  });

  it('is refused when the header arrives in pieces', () => {
    const { parser } = collector(MAX);
    const frame = withPayload(MAX + 1);
    parser.push(frame.subarray(0, 3));
    expect(parser.bufferedBytes).toBe(3);
    expect(expectFrameError(() => parser.push(frame.subarray(3, FRAME_HEADER_SIZE))).replyText).toBe(TEXT);
  });

  it('is refused when its header follows a complete frame in the same chunk', () => {
    const { parser, seen } = collector(MAX);
    expectFrameError(() => parser.push(Buffer.concat([withPayload(100), withPayload(MAX + 1).subarray(0, 10)])));
    expect(seen).toHaveLength(1);
  });

  it('is refused for a size field near 2^32 (no overflow, no allocation)', () => {
    const { parser } = collector(MAX);
    expect(expectFrameError(() => parser.push(Buffer.from([1, 0, 1, 0xff, 0xff, 0xff, 0xff]))).replyText).toBe(
      'FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,4294967295,4088}',
    );
  });

  it('follows a change of maxPayloadSize (after connection.tune-ok)', () => {
    const { parser, seen } = collector(131072);
    parser.push(withPayload(MAX + 1));
    expect(seen).toHaveLength(1);
    parser.maxPayloadSize = MAX;
    expect(expectFrameError(() => parser.push(withPayload(MAX + 1))).replyText).toBe(TEXT);
  });
});

// ---------------------------------------------------------------------------------------------
// With a BodyPieceSink (as the connection gives one): body frames on a channel split across chunks
// are handed on piece by piece as views into the chunks (the assembler copies them once into the
// message body); every other frame behaves as above.

interface Piece {
  channel: number;
  buf: Buffer;
  start: number;
  end: number;
  payloadSize: number;
  first: boolean;
  last: boolean;
  /** the payload bytes, read during the call (the view is only valid then) */
  bytes: string;
}

function streamingCollector(maxPayloadSize = 131072): { parser: FrameParser; seen: Seen[]; pieces: Piece[] } {
  const seen: Seen[] = [];
  const pieces: Piece[] = [];
  const parser = new FrameParser(
    maxPayloadSize,
    (type, channel, buf, start, end) => seen.push({ type, channel, buf, start, end }),
    (channel, buf, start, end, payloadSize, first, last) =>
      pieces.push({ channel, buf, start, end, payloadSize, first, last, bytes: buf.toString('hex', start, end) }),
  );
  return { parser, seen, pieces };
}

describe('body frames split across chunks are streamed to the BodyPieceSink', () => {
  it('every frame arrives whole or as pieces that add up to it, in order; pieces are views into the chunks', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
        const { stream, offsets } = buildStream(frames);
        const { chunks, starts } = cut(stream, cuts);
        const c = streamingCollector();
        // Rebuild the frame sequence from both sinks, in the order they were called.
        const order: string[] = [];
        let current: { channel: number; payloadSize: number; bytes: string } | null = null;
        const parser = new FrameParser(
          131072,
          (type, channel, buf, start, end) => {
            expect(current).toBeNull();
            order.push(JSON.stringify({ type, channel, payload: buf.toString('hex', start, end) }));
          },
          (channel, buf, start, end, payloadSize, first, last) => {
            expect(chunks).toContain(buf); // a view into the chunk just pushed: no copy
            if (first) {
              expect(current).toBeNull();
              current = { channel, payloadSize, bytes: '' };
            }
            expect(current).not.toBeNull();
            expect(channel).toBe(current!.channel);
            expect(payloadSize).toBe(current!.payloadSize);
            current!.bytes += buf.toString('hex', start, end);
            if (last) {
              expect(current!.bytes.length / 2).toBe(payloadSize);
              order.push(JSON.stringify({ type: 3, channel, payload: current!.bytes }));
              current = null;
            }
          },
        );
        for (const chunk of chunks) parser.push(chunk);
        expect(current).toBeNull();
        expect(parser.bufferedBytes).toBe(0);
        expect(order).toEqual(frames.map((f) => JSON.stringify(plainSpec(f))));

        // Which frames were streamed: exactly the body frames on a channel that no chunk holds whole.
        const streamed = frames.map((f, i) => {
          const fs = offsets[i]!;
          const fe = fs + FRAME_OVERHEAD + f.payload.length;
          const whole = starts.some((cs, k) => cs <= fs && fe <= cs + chunks[k]!.length);
          return f.type === 3 && f.channel !== 0 && !whole;
        });
        for (const chunk of chunks) c.parser.push(chunk);
        expect(c.pieces.filter((p) => p.last)).toHaveLength(streamed.filter(Boolean).length);
        expect(c.seen).toHaveLength(streamed.filter((s) => !s).length);
      }),
      { numRuns: 300 },
    );
  });

  it('a body frame cut at every point: pieces in order, the last one only with the frame-end octet', () => {
    const payload = Uint8Array.from({ length: 40 }, (_, i) => i);
    const frame = buildStream([{ type: 3, channel: 7, payload }]).stream;
    for (let a = 1; a < frame.length; a++) {
      for (let b = a; b < frame.length; b++) {
        const { parser, seen, pieces } = streamingCollector();
        parser.push(frame.subarray(0, a));
        parser.push(frame.subarray(a, b));
        parser.push(frame.subarray(b));
        expect(seen).toHaveLength(0);
        expect(pieces.map((p) => p.bytes).join('')).toBe(Buffer.from(payload).toString('hex'));
        expect(pieces.filter((p) => p.first)).toHaveLength(1);
        expect(pieces[0]!.first).toBe(true);
        expect(pieces.filter((p) => p.last)).toHaveLength(1);
        expect(pieces.at(-1)!.last).toBe(true);
        for (const p of pieces) expect([p.channel, p.payloadSize]).toEqual([7, 40]);
        expect(parser.bufferedBytes).toBe(0);
      }
    }
  });

  it('a 0-byte body frame split anywhere arrives as empty pieces with first and last', () => {
    const frame = buildStream([{ type: 3, channel: 1, payload: new Uint8Array(0) }]).stream;
    for (let a = 1; a < frame.length; a++) {
      const { parser, seen, pieces } = streamingCollector();
      parser.push(frame.subarray(0, a));
      parser.push(frame.subarray(a));
      expect(seen).toHaveLength(0);
      expect(pieces.map((p) => [p.bytes, p.payloadSize, p.first, p.last])).toEqual(a < FRAME_HEADER_SIZE ? [['', 0, true, true]] : [['', 0, true, false], ['', 0, false, true]]);
    }
  });

  it('body frames on channel 0, methods and headers split across chunks are still copied whole', () => {
    const frames: Spec[] = [
      { type: 3, channel: 0, payload: Buffer.from('hello') },
      { type: 1, channel: 1, payload: Uint8Array.from([0, 60, 0, 40, 1, 2, 3]) },
      { type: 2, channel: 1, payload: new Uint8Array(30).fill(9) },
    ];
    const { stream } = buildStream(frames);
    for (let a = 1; a < stream.length; a++) {
      const { parser, seen, pieces } = streamingCollector();
      parser.push(Buffer.from(stream.subarray(0, a)));
      parser.push(Buffer.from(stream.subarray(a)));
      expect(pieces).toHaveLength(0);
      expect(seen.map(plain)).toEqual(frames.map(plainSpec));
    }
  });

  it('a pause from the sink after the last piece holds the rest of the chunk until resume()', () => {
    const frames: Spec[] = [
      { type: 3, channel: 1, payload: new Uint8Array(100).fill(1) },
      { type: 1, channel: 1, payload: Uint8Array.from([0, 60, 0, 40]) },
    ];
    const { stream } = buildStream(frames);
    const seen: number[] = [];
    const parser: FrameParser = new FrameParser(
      131072,
      (type) => seen.push(type),
      (_channel, _buf, _start, _end, _size, _first, last) => {
        if (last) {
          seen.push(3);
          parser.pause();
        }
      },
    );
    parser.push(stream.subarray(0, 50));
    parser.push(stream.subarray(50));
    expect(seen).toEqual([3]);
    expect(parser.bufferedBytes).toBe(FRAME_OVERHEAD + 4);
    parser.resume();
    expect(seen).toEqual([3, 1]);
  });

  describe('bad frame-end of a streamed frame: RabbitMQ\'s text, as for a whole frame, and no last piece', () => {
    for (const [name, payload, text] of [
      ['short payload (all octets)', Buffer.from('hello'), 'FRAME_ERROR - type 3, all octets = <<"hello">>: {invalid_frame_end_marker,65}'],
      [
        'long payload (first 16 octets)',
        Buffer.from(Uint8Array.from({ length: 40 }, (_, i) => i)),
        'FRAME_ERROR - type 3, first 16 octets = <<0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15>>: {invalid_frame_end_marker,65}',
      ],
    ] as const) {
      it(name, () => {
        const frame = buildStream([{ type: 3, channel: 1, payload }], 0x41).stream;
        // unsplit (not streamed) gives the reference text
        expect(expectFrameError(() => streamingCollector().parser.push(frame)).replyText).toBe(text);
        for (let a = 1; a < frame.length; a++) {
          for (const b of [a + 1, Math.floor((a + frame.length) / 2), frame.length - 1]) {
            if (b <= a || b >= frame.length) continue;
            const { parser, pieces } = streamingCollector();
            parser.push(frame.subarray(0, a));
            parser.push(frame.subarray(a, b));
            expect(expectFrameError(() => parser.push(frame.subarray(b))).replyText).toBe(text);
            expect(pieces.some((p) => p.last)).toBe(false);
          }
        }
      });
    }
  });
});
