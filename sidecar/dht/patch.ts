// The DHT modules' access to bittorrent-dht / k-rpc / k-rpc-socket / k-bucket internals, through
// common/monkey-patch.ts: every member is checked when the node is hardened, so an upgrade that
// renames or restructures one fails at start-up with a message naming the package, its version and
// the member, instead of silently running unpatched.
import { patchableFunction, patchableObject as checkedObject, type AnyFunction, type PatchOwner } from '../common/monkey-patch.js';

/** Which package each object named in `where` comes from, and the package npm may nest it in. */
const PACKAGES: Record<string, { pkg: string; via?: string }> = {
  'bittorrent-dht': { pkg: 'bittorrent-dht' },
  'k-rpc': { pkg: 'k-rpc', via: 'bittorrent-dht' },
  'k-rpc-socket': { pkg: 'k-rpc-socket', via: 'k-rpc' },
  'k-bucket': { pkg: 'k-bucket', via: 'bittorrent-dht' },
  dgram: { pkg: 'node' },
};

/** `where` is "<package> <object>", e.g. "k-rpc RPC" or "bittorrent-dht DHT._values (lru)". */
function ownerOf(where: string): PatchOwner {
  const space = where.indexOf(' ');
  const known = PACKAGES[where.slice(0, space)];
  if (space < 0 || known === undefined)
    throw new Error(`dht/patch: "${where}" does not start with a known package (${Object.keys(PACKAGES).join(', ')})`);
  const object = where.slice(space + 1);
  return { ...known, object: known.pkg === 'node' ? `${where.slice(0, space)}.${object}` : object };
}

/** `obj[name]` (a function, not bound), or throws a PatchTargetError naming what is missing. */
export function patchable(obj: object, name: string, where: string): AnyFunction {
  return patchableFunction(obj, name, ownerOf(where));
}

/** `obj[name]` (an object), or throws a PatchTargetError naming what is missing. */
export function patchableObject(obj: object, name: string, where: string): any {
  return checkedObject(obj, name, ownerOf(where));
}
