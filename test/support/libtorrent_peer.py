#!/usr/bin/python3
# An independent BitTorrent peer for the tests: Debian's python3-libtorrent (2.0.x).
# Loopback only: no DHT bootstrap, no LSD/UPnP/NAT-PMP; peers are given explicitly.
#
#   libtorrent_peer.py fetch --torrent F | --magnet URI  --save DIR --peer PORT [--file IDX] [--timeout S]
#
# Prints one JSON object on stdout.
import argparse, json, sys, time

import libtorrent as lt


def session(extra=None):
    s = {
        'listen_interfaces': '127.0.0.1:0',
        'outgoing_interfaces': '127.0.0.1',
        'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
        'dht_bootstrap_nodes': '',           # never resolve a public bootstrap host
        'tick_interval': 10,                 # connect_peer acts on the next tick
        'out_enc_policy': 2,                 # plaintext: fast small transfers in tests
        'allow_multiple_connections_per_ip': True,
        'enable_outgoing_utp': False, 'enable_incoming_utp': False,  # uTP over loopback is slow
    }
    if extra:
        s.update(extra)
    return lt.session(s)


def wait(pred, timeout, step=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def fetch(a):
    ses = session()
    t0 = time.monotonic()
    if a.magnet:
        atp = lt.parse_magnet_uri(a.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save
    atp.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    h = ses.add_torrent(atp)
    h.connect_peer(('127.0.0.1', a.peer))
    if not wait(lambda: h.status().has_metadata, a.timeout):
        print(json.dumps({'ok': False, 'error': 'no metadata'}))
        return 1
    ti = h.torrent_file()
    if a.file is not None:
        prio = [0] * ti.num_files()
        prio[a.file] = 4
        h.prioritize_files(prio)

    def done():
        if a.file is not None:
            return h.file_progress(lt.torrent_handle.piece_granularity)[a.file] == ti.files().file_size(a.file)
        return h.status().is_seeding

    ok = wait(done, a.timeout)
    st = h.status()
    h.flush_cache()
    files = [ti.files().file_path(i) for i in range(ti.num_files())]
    print(json.dumps({
        'ok': ok, 'seconds': round(time.monotonic() - t0, 3), 'infoHash': str(h.info_hash()),
        'payloadDownloaded': st.total_payload_download, 'files': files, 'name': ti.name(),
    }))
    ses.remove_torrent(h)
    time.sleep(0.05)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    f = sub.add_parser('fetch')
    f.add_argument('--torrent')
    f.add_argument('--magnet')
    f.add_argument('--save', required=True)
    f.add_argument('--peer', type=int, required=True)
    f.add_argument('--file', type=int)
    f.add_argument('--timeout', type=float, default=30)
    a = ap.parse_args()
    return fetch(a)


if __name__ == '__main__':
    sys.exit(main())
