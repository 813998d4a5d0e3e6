#!/usr/bin/python3
# A libtorrent (Debian python3-libtorrent 2.0.x) DHT node on 127.0.0.1 that joins a local DHT and
# stays up, so tests can put BEP-44 items on it and read them back from it.
#
#   libtorrent_dht_node.py --bootstrap host:port,... [--timeout S]
#
# Prints {"port": P} once bootstrapped, then runs until stdin closes or the timeout passes.
import argparse, json, select, sys, time

import libtorrent as lt

from libtorrent_peer import wait_for_dht_bootstrap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bootstrap', required=True)
    ap.add_argument('--timeout', type=float, default=60)
    a = ap.parse_args()
    ses = lt.session({
        'listen_interfaces': '127.0.0.1:0',
        'outgoing_interfaces': '127.0.0.1',
        'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
        'enable_dht': True,
        'dht_bootstrap_nodes': a.bootstrap,  # never resolve a public bootstrap host
        'dht_restrict_routing_ips': False, 'dht_restrict_search_ips': False,
        'dht_ignore_dark_internet': False, 'dht_prefer_verified_node_ids': False,
        'dht_enforce_node_id': False,
        # Every local node shares 127.0.0.1: libtorrent's per-IP limits would count them as one.
        'dht_block_ratelimit': 100000, 'dht_upload_rate_limit': 10000000,
        'alert_mask': lt.alert_category.dht | lt.alert_category.error,
    })
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
