#!/bin/sh
# Installs the nostr-bt sidecar as a systemd service. Run as root from a checkout, after
# `npm ci && npm run build && npm install -g .`:
#
#   sudo scripts/install-systemd.sh [--strfry-user USER] [--no-start]
#
# Creates the nostr-bt system user and group, adds strfry's user (default "strfry") to that group,
# installs /etc/nostr-bt/config.toml from docs/config.example.toml unless one exists, installs the
# unit with ExecStart pointing at the installed nostr-bt-sidecar, then enables and (re)starts it.
# Running it again after an upgrade keeps the config and restarts the service.
#
# DESTDIR=/some/root only places the files under that root (packaging, tests): no users, no systemctl.
set -eu

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

root=$(cd "$(dirname "$0")/.." && pwd)
strfry_user=strfry
start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --strfry-user) strfry_user=${2:?--strfry-user needs a user name}; shift 2 ;;
    --no-start) start=no; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-systemd.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
dest=${DESTDIR:-}
bin=${NOSTR_BT_SIDECAR_BIN:-$(command -v nostr-bt-sidecar || true)}
if [ -z "$bin" ]; then
  echo "install-systemd.sh: nostr-bt-sidecar is not on PATH: run 'npm install -g .' first (or set NOSTR_BT_SIDECAR_BIN)" >&2
  exit 1
fi

if [ -z "$dest" ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-systemd.sh: run as root (sudo)" >&2; exit 1; fi
  getent group nostr-bt >/dev/null || groupadd --system nostr-bt
  id nostr-bt >/dev/null 2>&1 || useradd --system --gid nostr-bt --home-dir /var/lib/nostr-bt --shell /usr/sbin/nologin nostr-bt
  if id "$strfry_user" >/dev/null 2>&1; then
    usermod -aG nostr-bt "$strfry_user"
  else
    echo "install-systemd.sh: no user '$strfry_user': add strfry's user to the nostr-bt group yourself (usermod -aG nostr-bt USER)" >&2
  fi
fi

install -d -m 0755 "$dest/etc/nostr-bt" "$dest/etc/systemd/system"
if [ -e "$dest/etc/nostr-bt/config.toml" ]; then
  echo "keeping $dest/etc/nostr-bt/config.toml"
else
  install -m 0644 "$root/docs/config.example.toml" "$dest/etc/nostr-bt/config.toml"
  echo "installed $dest/etc/nostr-bt/config.toml (edit it: docs/config.md)"
fi
unit="$dest/etc/systemd/system/nostr-bt-sidecar.service"
sed -e "s|^ExecStart=.*|ExecStart=$bin|" \
    -e "s|^Documentation=.*|Documentation=file://$root/README.md file://$root/docs/config.md|" \
    "$root/scripts/systemd/nostr-bt-sidecar.service" > "$unit.tmp"
chmod 0644 "$unit.tmp"
mv "$unit.tmp" "$unit"
echo "installed $unit (ExecStart=$bin)"

if [ -z "$dest" ]; then
  systemctl daemon-reload
  systemctl enable nostr-bt-sidecar
  if [ "$start" = yes ]; then
    systemctl restart nostr-bt-sidecar
    echo "started: systemctl status nostr-bt-sidecar; nostr-bt status --table"
  fi
fi
