declare module 'bencode' {
  type Value = number | bigint | string | Uint8Array | Value[] | { [key: string]: Value };
  const bencode: {
    encode(data: unknown): Uint8Array;
    decode(data: Uint8Array, start?: number, end?: number, encoding?: string): any;
    byteLength(data: unknown): number;
    encodingLength(data: unknown): number;
  };
  export default bencode;
  export type { Value };
}
