// A bundle's info dict bencoded in one pass into one buffer (docs/protocol.md §6: exactly the
// keys files, name, piece length, pieces). The bencode library builds a byte array per string and
// concatenates them: for a 50,000-file window that was most of the cut worker's garbage and a
// tenth of its time. Byte for byte what bencode.encode gives for the same dict (tested).

export interface InfoFile {
  pubkey: string;
  length: number;
}

export interface BundleInfo {
  /** Ascending pubkey; each file is `<pubkey>.jsonl`. */
  files: readonly InfoFile[];
  name: string;
  pieceLength: number;
  pieces: Uint8Array;
}

const FILE_SUFFIX = '.jsonl';

export function encodeBundleInfo(info: BundleInfo): Buffer {
  const parts: string[] = ['d5:filesl'];
  for (const f of info.files) {
    const path = f.pubkey + FILE_SUFFIX;
    parts.push(`d6:lengthi${integer(f.length)}e4:pathl${Buffer.byteLength(path)}:${path}ee`);
  }
  parts.push(
    `e4:name${Buffer.byteLength(info.name)}:${info.name}12:piece lengthi${integer(info.pieceLength)}e6:pieces${info.pieces.length}:`,
  );
  const head = parts.join('');
  const headBytes = Buffer.byteLength(head);
  const out = Buffer.allocUnsafe(headBytes + info.pieces.length + 1);
  out.write(head, 0);
  out.set(info.pieces, headBytes);
  out[out.length - 1] = 0x65; // 'e'
  return out;
}

function integer(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`bencode: ${n} is not an integer`);
  return String(n);
}
