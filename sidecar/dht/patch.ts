// The one way this project patches bittorrent-dht / k-rpc / k-bucket internals: every patched
// member is checked to exist when the node starts, so an upgrade that renames or restructures one
// fails at start-up with a message naming it, instead of silently running unpatched.

/**
 * Returns `obj[name]` (a function) bound to nothing, or throws naming what is missing.
 * `where` names the object for the message, e.g. "bittorrent-dht DHT".
 */
export function patchable<T extends object, K extends string>(obj: T, name: K, where: string): (...args: any[]) => any {
  const f = (obj as Record<string, unknown>)[name];
  if (typeof f !== 'function') {
    throw new Error(`cannot harden the DHT node: ${where}.${name} is ${f === undefined ? 'missing' : `a ${typeof f}, not a function`} (bittorrent-dht internals changed; see sidecar/dht-*.ts)`);
  }
  return f as (...args: any[]) => any;
}

/** Returns `obj[name]` (an object), or throws naming what is missing. */
export function patchableObject<T extends object>(obj: T, name: string, where: string): any {
  const o = (obj as Record<string, unknown>)[name];
  if (o === null || typeof o !== 'object') {
    throw new Error(`cannot harden the DHT node: ${where}.${name} is ${o === undefined ? 'missing' : `a ${o === null ? 'null' : typeof o}, not an object`} (bittorrent-dht internals changed; see sidecar/dht-*.ts)`);
  }
  return o;
}
