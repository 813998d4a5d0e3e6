// z-base-32 (the alphabet pkarr writes public keys in): the bridge key's text form (docs/protocol.md).

export const Z32 = 'ybndrfg8ejkmcpqxot1uwisza345h769';

/** z-base-32, as pkarr writes public keys. */
export function zbase32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += Z32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += Z32[(acc << (5 - bits)) & 31];
  return out;
}

export function zbase32Decode(s: string): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const ch of s) {
    const v = Z32.indexOf(ch);
    if (v < 0) throw new Error(`not z-base-32: ${JSON.stringify(ch)}`);
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((acc >>> (bits - 8)) & 255);
      bits -= 8;
    }
    acc &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}
