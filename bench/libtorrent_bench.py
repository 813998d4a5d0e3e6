#!/usr/bin/python3
# libtorrent (Debian python3-libtorrent 2.0.x) as the independent peer for the bundle benchmark.
# Loopback only: no DHT, no LSD/UPnP/NAT-PMP, no trackers; peers are given explicitly. TCP only
# (uTP off), plaintext, 10 ms tick: the session of test/testkit/libtorrent_session.py.
#
#   libtorrent_bench.py fetch --torrent F --save DIR --peer PORT [--file-name NAME] [--timeout S]
#       one download; prints one JSON line
#   libtorrent_bench.py seed --torrent F --save DIR [--max-seconds S]
#       seeds (seed_mode) and prints {"port": N}; stops when stdin closes (or after S seconds)
#   libtorrent_bench.py fetch-many --torrents LIST --save DIR --peer PORT [--timeout S]
#       every torrent named in LIST (a file, one .torrent path a line) at once in one session, all
#       from 127.0.0.1:PORT; prints one JSON line when every one is complete (or at the timeout)
#   libtorrent_bench.py serve [--max-seconds S]
#       many downloads, one interpreter (a fresh session each): reads JSON commands from stdin, one per line
#       ({"id":..,"torrent":..,"save":..,"peer":..,"fileName":..,"timeout":..}) and answers each
#       with one JSON line; exits when stdin closes (or after S seconds)
#
# Run it with /usr/bin/python3 (a pyenv python may not see Debian's module).
import argparse, json, os, select, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'testkit'))
import libtorrent as lt
from libtorrent_session import loopback_session


def session():
    # Only errors are read from the alert queue; in_enc_policy 1 (accept both) as libtorrent's default.
    return loopback_session({'in_enc_policy': 1, 'alert_mask': lt.alert_category.error})


def add(ses, torrent, save, seed=False):
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    # The default (paused | auto_managed) makes a seeder reject peers, which then wait 60 s.
    atp.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    if seed:
        atp.flags |= lt.torrent_flags.seed_mode
    return ses.add_torrent(atp)


def fetch_one(ses, torrent, save, peer, file_name=None, timeout=60.0):
    """Downloads the torrent (or one file of it) from 127.0.0.1:peer; returns a result dict."""
    t0 = time.monotonic()
    ti = lt.torrent_info(torrent)
    fidx = None
    if file_name is not None:
        for i in range(ti.num_files()):
            if os.path.basename(ti.files().file_path(i)) == file_name:
                fidx = i
                break
        if fidx is None:
            return {'ok': False, 'error': 'no such file in the torrent: ' + file_name}
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save
    atp.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    if fidx is not None:
        prio = [0] * ti.num_files()
        prio[fidx] = 4
        atp.file_priorities = prio
    h = ses.add_torrent(atp)
    h.connect_peer(('127.0.0.1', peer))
    first_byte = None
    transport = set()
    ok = False
    end = t0 + timeout
    size = ti.files().file_size(fidx) if fidx is not None else ti.total_size()
    while time.monotonic() < end:
        st = h.status()
        if first_byte is None and st.total_payload_download > 0:
            first_byte = time.monotonic()
            # peer_info flag bits (the binding lacks the names): utp_socket = 1 << 17, rc4_encrypted = 1 << 19
            for p in h.get_peer_info():
                transport.add(('utp' if p.flags & (1 << 17) else 'tcp') + (' rc4' if p.flags & (1 << 19) else ''))
        if fidx is not None:
            # piece_granularity: only hash-verified pieces count.
            if h.file_progress(lt.torrent_handle.piece_granularity)[fidx] == size:
                ok = True
                break
        elif st.is_seeding:
            ok = True
            break
        time.sleep(0.002)
    t1 = time.monotonic()
    st = h.status()
    errors = [a.message() for a in ses.pop_alerts() if isinstance(a, (lt.torrent_error_alert, lt.peer_error_alert))][:5]
    if fidx is not None:
        h.flush_cache()
    ses.remove_torrent(h)
    res = {
        'ok': ok, 'seconds': round(t1 - t0, 4), 'bytes': size,
        'payloadDownloaded': st.total_payload_download, 'totalDownloaded': st.total_download,
        'infoHash': str(ti.info_hash()), 'name': ti.name(), 'transport': sorted(transport), 'errors': errors,
    }
    if first_byte is not None:
        res['firstByteSeconds'] = round(first_byte - t0, 4)
        res['transferSeconds'] = round(t1 - first_byte, 4)
    if ok and t1 > t0:
        res['MBps'] = round(size / 1e6 / (t1 - t0), 2)
    return res


def cmd_fetch(a):
    ses = session()
    res = fetch_one(ses, a.torrent, a.save, a.peer, a.file_name, a.timeout)
    print(json.dumps(res), flush=True)
    time.sleep(0.05)  # let libtorrent close its files
    return 0 if res['ok'] else 1


def cmd_fetch_many(a):
    ses = session()
    t0 = time.monotonic()
    with open(a.torrents) as f:
        paths = [l.strip() for l in f if l.strip()]
    handles = []
    size = 0
    for p in paths:
        ti = lt.torrent_info(p)
        size += ti.total_size()
        h = add(ses, p, a.save)
        h.connect_peer(('127.0.0.1', a.peer))
        handles.append(h)
    end = t0 + a.timeout
    done = 0
    while time.monotonic() < end:
        done = sum(1 for h in handles if h.status().is_seeding)
        if done == len(handles):
            break
        time.sleep(0.005)
    t1 = time.monotonic()
    payload = sum(h.status().total_payload_download for h in handles)
    errors = [a_.message() for a_ in ses.pop_alerts() if isinstance(a_, (lt.torrent_error_alert, lt.peer_error_alert))][:5]
    res = {'ok': done == len(handles), 'seconds': round(t1 - t0, 4), 'bytes': size, 'torrents': len(handles), 'complete': done,
           'payloadDownloaded': payload, 'errors': errors}
    if t1 > t0:
        res['MBps'] = round(size / 1e6 / (t1 - t0), 2)
    print(json.dumps(res), flush=True)
    for h in handles:
        ses.remove_torrent(h)
    time.sleep(0.05)  # let libtorrent close its files
    return 0 if res['ok'] else 1


def cmd_seed(a):
    ses = session()
    h = add(ses, a.torrent, a.save, seed=True)
    end = time.monotonic() + 10
    while time.monotonic() < end and not (ses.listen_port() != 0 and h.status().is_seeding):
        time.sleep(0.01)
    if not h.status().is_seeding:
        print(json.dumps({'ok': False, 'error': 'not seeding: ' + str(h.status().state)}), flush=True)
        return 1
    print(json.dumps({'ok': True, 'port': ses.listen_port()}), flush=True)
    end = time.monotonic() + a.max_seconds
    while time.monotonic() < end:
        r, _, _ = select.select([sys.stdin], [], [], 0.5)
        if r and not sys.stdin.readline():
            break
        ses.pop_alerts()
    print(json.dumps({'uploaded': h.status().total_payload_upload}), flush=True)
    return 0


def cmd_serve(a):
    # A fresh session per request: a long-lived session connects to a peer added to a new torrent
    # only on its once-a-second tick (measured: ~650 ms of idle wait); a new one connects at once.
    print(json.dumps({'ready': True}), flush=True)
    end = time.monotonic() + a.max_seconds
    while time.monotonic() < end:
        r, _, _ = select.select([sys.stdin], [], [], 0.5)
        if not r:
            continue
        line = sys.stdin.readline()
        if not line:
            break
        try:
            c = json.loads(line)
            ses = session()
            res = fetch_one(ses, c['torrent'], c['save'], int(c['peer']), c.get('fileName'), float(c.get('timeout', 30)))
        except Exception as e:  # report, keep serving
            res = {'ok': False, 'error': repr(e)}
        res['id'] = c.get('id') if isinstance(c, dict) else None
        print(json.dumps(res), flush=True)
        ses = None  # the old session shuts down after the answer
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    f = sub.add_parser('fetch')
    f.add_argument('--torrent', required=True)
    f.add_argument('--save', required=True)
    f.add_argument('--peer', type=int, required=True)
    f.add_argument('--file-name')
    f.add_argument('--timeout', type=float, default=60)
    m = sub.add_parser('fetch-many')
    m.add_argument('--torrents', required=True)
    m.add_argument('--save', required=True)
    m.add_argument('--peer', type=int, required=True)
    m.add_argument('--timeout', type=float, default=600)
    s = sub.add_parser('seed')
    s.add_argument('--torrent', required=True)
    s.add_argument('--save', required=True)
    s.add_argument('--max-seconds', type=float, default=600)
    v = sub.add_parser('serve')
    v.add_argument('--max-seconds', type=float, default=1800)
    a = ap.parse_args()
    return {'fetch': cmd_fetch, 'fetch-many': cmd_fetch_many, 'seed': cmd_seed, 'serve': cmd_serve}[a.cmd](a)


if __name__ == '__main__':
    sys.exit(main())
