# The libtorrent session every independent peer of the tests (test/testkit/libtorrent_peer.py) and
# the benchmarks (bench/libtorrent_bench.py) runs: Debian's python3-libtorrent 2.0.x on loopback
# only (no DHT bootstrap, no LSD/UPnP/NAT-PMP; peers are given explicitly), TCP only, plaintext,
# a 10 ms tick (libtorrent's defaults make small loopback transfers slow).
import libtorrent as lt

LOOPBACK_SETTINGS = {
    'listen_interfaces': '127.0.0.1:0',
    'outgoing_interfaces': '127.0.0.1',
    'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'dht_bootstrap_nodes': '',           # never resolve a public bootstrap host
    'tick_interval': 10,                 # connect_peer acts on the next tick
    'out_enc_policy': 2,                 # plaintext: fast small transfers
    'allow_multiple_connections_per_ip': True,
    'enable_outgoing_utp': False, 'enable_incoming_utp': False,  # uTP over loopback is slow
}


def loopback_session(extra=None):
    """A session with LOOPBACK_SETTINGS, `extra` (a dict of settings) on top."""
    s = dict(LOOPBACK_SETTINGS)
    if extra:
        s.update(extra)
    return lt.session(s)


def local_dht_settings(bootstrap):
    """Settings on top of LOOPBACK_SETTINGS for a DHT node that joins the local DHT at `bootstrap`
    ("host:port,..."): every local node shares 127.0.0.1, so libtorrent's per-IP limits and node-id
    checks would count them as one or refuse them."""
    return {
        'enable_dht': True,
        'dht_bootstrap_nodes': bootstrap,
        'dht_restrict_routing_ips': False, 'dht_restrict_search_ips': False,
        'dht_ignore_dark_internet': False, 'dht_prefer_verified_node_ids': False,
        'dht_enforce_node_id': False,
        'dht_block_ratelimit': 100000, 'dht_upload_rate_limit': 10000000,
    }
