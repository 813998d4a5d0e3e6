// The WebTorrent internals that sidecar/seeding/peer-limits.ts wraps (untyped upstream).
declare module 'webtorrent/lib/conn-pool.js' {
  const ConnPool: { prototype: { _onConnection(conn: unknown, type: string): void } };
  export default ConnPool;
}

declare module 'bittorrent-protocol' {
  const Wire: { prototype: object };
  export default Wire;
}
