#!/usr/bin/python3
# A libtorrent (Debian python3-libtorrent 2.0.x) DHT node on 127.0.0.1 that joins a local DHT and
# stays up, so tests can put BEP-44 items on it and read them back from it.
#
#   libtorrent_dht_node.py --bootstrap host:port,... [--timeout S]
#
# Prints {"port": P} once bootstrapped, then runs until stdin closes or the timeout passes.
import argparse, json, select, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import libtorrent as lt

from libtorrent_peer import wait_for_dht_bootstrap
from libtorrent_session import local_dht_settings, loopback_session


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bootstrap', required=True)
    ap.add_argument('--timeout', type=float, default=60)
    a = ap.parse_args()
    ses = loopback_session({**local_dht_settings(a.bootstrap), 'alert_mask': lt.alert_category.dht | lt.alert_category.error})
    deadline = time.monotonic() + a.timeout
    if not wait_for_dht_bootstrap(ses, deadline):
        print(json.dumps({'error': 'no dht_bootstrap_alert'}), flush=True)
        return 1
    print(json.dumps({'port': ses.listen_port()}), flush=True)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sys.stdin], [], [], 0.1)
        if ready and not sys.stdin.read(1):
            break
        ses.pop_alerts()
    return 0


if __name__ == '__main__':
    sys.exit(main())
