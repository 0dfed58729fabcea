// Type declarations for the parts of the buffer-layout package that Warren uses.
declare module 'buffer-layout' {
  export class Layout<T = unknown> {
    readonly span: number;
    readonly property: string | undefined;
    decode(b: Buffer, offset?: number): T;
    encode(src: T, b: Buffer, offset?: number): number;
  }
  export class Structure<T> extends Layout<T> {}
  export function struct<T>(fields: Layout[], property?: string): Structure<T>;
  export function u8(property?: string): Layout<number>;
  export function u16be(property?: string): Layout<number>;
  export function u32be(property?: string): Layout<number>;
  export function nu64be(property?: string): Layout<number>;
  const _default: {
    struct: typeof struct;
    u8: typeof u8;
    u16be: typeof u16be;
    u32be: typeof u32be;
    nu64be: typeof nu64be;
  };
  export default _default;
}
