// TCP_NODELAY on every WebTorrent peer socket, for the seeder and the reader alike.
import { Peer, webtorrentOwner } from './webtorrent.js';
import { wrapMethod } from './monkey-patch.js';

let noDelayInstalled = false;

/** WebTorrent never sets TCP_NODELAY; small piece requests then wait on Nagle (~10× slower). */
export function installNoDelay(): void {
  if (noDelayInstalled) return;
  noDelayInstalled = true;
  wrapMethod<() => void>(
    Peer.prototype,
    'onConnect',
    webtorrentOwner('Peer.prototype'),
    (onConnect) =>
      function (this: { conn?: { setNoDelay?: (v: boolean) => void } }) {
        this.conn?.setNoDelay?.(true);
        return onConnect.call(this);
      },
  );
}
