// memory-chunk-store (webtorrent's in-memory piece store) ships no types; it is only passed to
// WebTorrent as a store constructor.
declare module 'memory-chunk-store' {
  const MemoryChunkStore: new (chunkLength: number, opts?: unknown) => unknown;
  export default MemoryChunkStore;
}
