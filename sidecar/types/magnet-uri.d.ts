declare module 'magnet-uri' {
  interface MagnetData {
    infoHash?: string;
    xt?: string | string[];
    dn?: string;
    name?: string;
    tr?: string[];
    announce?: string[];
    'x.pe'?: string | string[];
    peerAddresses?: string[];
    [key: string]: unknown;
  }
  function decode(uri: string): MagnetData;
  function encode(data: MagnetData): string;
  export default decode;
  export { decode, encode };
}
