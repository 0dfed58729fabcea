// The fixed-layout structures of the wire format, described once with buffer-layout. Used where a
// structure is read or written as a whole (split frames, content headers we build); the per-frame
// hot loop reads the same fields with direct Buffer calls.

import BufferLayout from 'buffer-layout';

export interface FrameHeader {
  type: number;
  channel: number;
  size: number;
}

/** Content header prefix: class-id, weight (always 0), body-size; the property flags follow. */
export interface ContentHeaderPrefix {
  classId: number;
  weight: number;
  bodySize: number;
}

export const Layout = {
  frameHeader: BufferLayout.struct<FrameHeader>([
    BufferLayout.u8('type'),
    BufferLayout.u16be('channel'),
    BufferLayout.u32be('size'),
  ]),
  contentHeaderPrefix: BufferLayout.struct<ContentHeaderPrefix>([
    BufferLayout.u16be('classId'),
    BufferLayout.u16be('weight'),
    BufferLayout.nu64be('bodySize'),
  ]),
} as const;
