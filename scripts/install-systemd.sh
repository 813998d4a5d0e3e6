#!/bin/sh
# Installs the nostr-bt sidecar as a systemd service. Run as root from a checkout, after
# `npm ci && npm run build && npm install -g .`:
#
#   sudo scripts/install-systemd.sh [--strfry-user USER] [--start | --no-start] [--dry-run]
#
# Creates the nostr-bt system user and group, adds strfry's user (default "strfry") to that group,
# installs /etc/nostr-bt/config.toml from docs/config.example.toml unless one exists, installs the
# unit with ExecStart pointing at the installed nostr-bt-sidecar and enables it. It does not start
# the service (--no-start, the default) so that the config can be edited first; --start starts it
# now (restarts it after an upgrade). Running it again keeps the config.
#
#   --dry-run         print the commands that change the system instead of running them
#   DESTDIR=/a/root   only place the files under that root (packaging, tests): no users, no systemctl
set -eu

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

root=$(cd "$(dirname "$0")/.." && pwd)
strfry_user=strfry
start=no
dry=no
while [ $# -gt 0 ]; do
  case "$1" in
    --strfry-user) strfry_user=${2:?--strfry-user needs a user name}; shift 2 ;;
    --start) start=yes; shift ;;
    --no-start) start=no; shift ;;
    --dry-run) dry=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-systemd.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
dest=${DESTDIR:-}
if [ -n "$dest" ] && [ "$start" = yes ]; then
  echo "install-systemd.sh: --start cannot start a service in a staging root (DESTDIR=$dest)" >&2
  exit 2
fi
bin=${NOSTR_BT_SIDECAR_BIN:-$(command -v nostr-bt-sidecar || true)}
if [ -z "$bin" ]; then
  echo "install-systemd.sh: nostr-bt-sidecar is not on PATH: run 'npm install -g .' first (or set NOSTR_BT_SIDECAR_BIN)" >&2
  exit 1
fi

# Commands that change the system (users, systemd): printed instead with --dry-run.
run() {
  if [ "$dry" = yes ]; then echo "would run: $*"; else "$@"; fi
}

if [ -z "$dest" ]; then
  if [ "$dry" = no ] && [ "$(id -u)" != 0 ]; then echo "install-systemd.sh: run as root (sudo)" >&2; exit 1; fi
  getent group nostr-bt >/dev/null || run groupadd --system nostr-bt
  id nostr-bt >/dev/null 2>&1 || run useradd --system --gid nostr-bt --home-dir /var/lib/nostr-bt --shell /usr/sbin/nologin nostr-bt
  if id "$strfry_user" >/dev/null 2>&1; then
    run usermod -aG nostr-bt "$strfry_user"
  else
    echo "install-systemd.sh: no user '$strfry_user': add strfry's user to the nostr-bt group yourself (usermod -aG nostr-bt USER)" >&2
  fi
fi

config="$dest/etc/nostr-bt/config.toml"
unit="$dest/etc/systemd/system/nostr-bt-sidecar.service"
if [ "$dry" = yes ]; then
  if [ -e "$config" ]; then echo "would keep $config"; else echo "would install $config"; fi
  echo "would install $unit (ExecStart=$bin)"
else
  install -d -m 0755 "$dest/etc/nostr-bt" "$dest/etc/systemd/system"
  if [ -e "$config" ]; then
    echo "keeping $config"
  else
    install -m 0644 "$root/docs/config.example.toml" "$config"
    echo "installed $config (edit it: docs/config.md)"
  fi
  sed -e "s|^ExecStart=.*|ExecStart=$bin|" \
      -e "s|^Documentation=.*|Documentation=file://$root/README.md file://$root/docs/config.md|" \
      "$root/scripts/systemd/nostr-bt-sidecar.service" > "$unit.tmp"
  chmod 0644 "$unit.tmp"
  mv "$unit.tmp" "$unit"
  echo "installed $unit (ExecStart=$bin)"
fi

if [ -z "$dest" ]; then
  run systemctl daemon-reload
  run systemctl enable nostr-bt-sidecar
  if [ "$start" = yes ]; then
    run systemctl restart nostr-bt-sidecar
    [ "$dry" = yes ] || echo "started: systemctl status nostr-bt-sidecar; nostr-bt status --table"
  elif [ "$dry" = no ] && systemctl is-active --quiet nostr-bt-sidecar; then
    echo "enabled; the running service still runs the previous version: systemctl restart nostr-bt-sidecar (or run this with --start)"
  else
    echo "enabled, not started: edit $config (docs/config.md), then: systemctl start nostr-bt-sidecar"
  fi
fi
