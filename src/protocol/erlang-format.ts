// RabbitMQ's reply texts print binaries the Erlang way (`<<"hello">>` when printable, `<<0,20,0>>`
// otherwise). Clients and operators match on these texts, so Warren prints them the same way.

const MAX_SHOWN = 200;

/** bytes[start, end) as an Erlang binary literal (long ones are cut; reply texts stop at 255 bytes). */
export function erlangBinary(bytes: Buffer, start = 0, end = bytes.length): string {
  const shownEnd = Math.min(end, start + MAX_SHOWN);
  if (end === start) return '<<>>';
  let printable = true;
  for (let i = start; i < shownEnd; i++) {
    const b = bytes[i]!;
    if (b < 32 || b > 126) {
      printable = false;
      break;
    }
  }
  if (printable) return `<<"${bytes.toString('latin1', start, shownEnd).replace(/["\\]/g, '\\$&')}">>`;
  const parts: number[] = [];
  for (let i = start; i < shownEnd; i++) parts.push(bytes[i]!);
  return `<<${parts.join(',')}>>`;
}
