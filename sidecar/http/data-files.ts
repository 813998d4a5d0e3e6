// Bundle data files kept open between web seed requests. A web seed client asks for a bundle in
// thousands of small ranges (WebTorrent: one 16 KiB block per request), and an open and a close
// per request are two more trips through libuv's thread pool than the read itself. Bounded in
// count and in idle time; a handle is closed once it is evicted and no read still uses it.
// A bundle's bytes never change (a rewrite is another infohash), and a retired bundle's deleted
// file is looked up in the index before any read, so an open handle never serves stale bytes;
// the idle bound lets the disk space of a deleted file go within IDLE_MS of its last read.
import { open, type FileHandle } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';

interface Entry {
  fh: Promise<FileHandle>;
  /** Reads using the handle now. */
  refs: number;
  evicted: boolean;
}

const IDLE_MS = 30_000;

export class DataFiles {
  private readonly files: LRUCache<string, Entry>;
  private closed = false;

  constructor(maxOpen = 64) {
    this.files = new LRUCache<string, Entry>({
      max: maxOpen,
      ttl: IDLE_MS,
      ttlAutopurge: true,
      updateAgeOnGet: true,
      dispose: (e) => {
        e.evicted = true;
        if (e.refs === 0) closeQuietly(e);
      },
    });
  }

  /** Runs `use` with an open handle of `path`; an open that fails (ENOENT: retired) rejects. */
  async with<T>(path: string, use: (fh: FileHandle) => Promise<T>): Promise<T> {
    let e = this.files.get(path);
    if (!e) {
      const entry: Entry = { fh: open(path, 'r'), refs: 0, evicted: this.closed };
      e = entry;
      if (!this.closed) this.files.set(path, entry);
      entry.fh.catch(() => {
        if (this.files.peek(path) === entry) this.files.delete(path);
      });
    }
    e.refs++;
    try {
      return await use(await e.fh);
    } finally {
      e.refs--;
      if (e.evicted && e.refs === 0) closeQuietly(e);
    }
  }

  /** Closes every idle handle now and the busy ones when their reads end. */
  close(): void {
    this.closed = true;
    this.files.clear();
  }
}

function closeQuietly(e: Entry): void {
  e.fh.then((fh) => fh.close()).catch(() => {});
}

/** Fills `buf` from `position`; a file shorter than its bundle record is an error, not a short answer. */
export async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) throw new Error(`data file ends at ${position + got}, ${buf.length - got} bytes short of its bundle record`);
    got += bytesRead;
  }
}
