#!/usr/bin/python3
# An independent BitTorrent peer for the tests: Debian's python3-libtorrent (2.0.x).
# Loopback only (the session of libtorrent_session.py beside it); peers are given explicitly.
#
#   libtorrent_peer.py fetch --torrent F | --magnet URI  --save DIR [--peer PORT] [--file IDX] [--timeout S]
#   libtorrent_peer.py dht-get --key HEX32 --salt HEX --bootstrap host:port,... [--timeout S]
#
# Prints one JSON object on stdout.
import argparse, json, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import libtorrent as lt
from libtorrent_session import local_dht_settings, loopback_session as session


def wait(pred, timeout, step=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def wait_for_dht_bootstrap(ses, deadline):
    """True once the session's DHT reports it bootstrapped, False at the (monotonic) deadline."""
    while time.monotonic() < deadline:
        ses.wait_for_alert(100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.dht_bootstrap_alert):
                return True
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
    if a.peer:  # none or 0: no peer at all (a web seed only, from the torrent's url-list)
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


def dht_get(a):
    # libtorrent checks the BEP-44 signature itself before it reports an item.
    t0 = time.monotonic()
    ses = session({
        **local_dht_settings(a.bootstrap),
        'alert_mask': lt.alert_category.dht | lt.alert_category.error | lt.alert_category.dht_log,
    })
    key = bytes.fromhex(a.key)
    salt = bytes.fromhex(a.salt)
    deadline = t0 + a.timeout
    out = {'ok': False}
    if not wait_for_dht_bootstrap(ses, deadline):
        out['error'] = 'no dht_bootstrap_alert'
        print(json.dumps(out))
        return 1
    ses.dht_get_mutable_item(key, salt)
    raw_v = None
    while time.monotonic() < deadline:
        ses.wait_for_alert(100)
        for al in ses.pop_alerts():
            if isinstance(al, lt.dht_pkt_alert) and raw_v is None:
                try:
                    msg = lt.bdecode(al.pkt_buf)
                    r = msg.get(b'r') if isinstance(msg, dict) else None
                    if r and b'v' in r and r.get(b'k') == key:
                        raw_v = r[b'v']
                except Exception:
                    pass
            elif isinstance(al, lt.dht_mutable_item_alert) and al.key == key and al.authoritative:
                out['seq'] = al.seq
                out['sig'] = bytes(al.signature).hex()
                out['ok'] = al.seq > 0
                if isinstance(raw_v, dict):
                    out['v'] = {k.decode(): (v.hex() if isinstance(v, bytes) else v) for k, v in raw_v.items()}
                out['seconds'] = round(time.monotonic() - t0, 3)
                print(json.dumps(out))
                return 0 if out['ok'] else 1
    out['error'] = 'no authoritative item'
    print(json.dumps(out))
    return 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    f = sub.add_parser('fetch')
    f.add_argument('--torrent')
    f.add_argument('--magnet')
    f.add_argument('--save', required=True)
    f.add_argument('--peer', type=int)  # none: BEP-19 web seeds (url-list) only
    f.add_argument('--file', type=int)
    f.add_argument('--timeout', type=float, default=30)
    g = sub.add_parser('dht-get')
    g.add_argument('--key', required=True)
    g.add_argument('--salt', required=True)
    g.add_argument('--bootstrap', required=True)
    g.add_argument('--timeout', type=float, default=20)
    a = ap.parse_args()
    return fetch(a) if a.cmd == 'fetch' else dht_get(a)


if __name__ == '__main__':
    sys.exit(main())
