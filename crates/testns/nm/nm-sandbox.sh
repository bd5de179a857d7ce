#!/bin/bash
# A real dbus-daemon and a real NetworkManager in private net/mount/uts namespaces, for tests
# (crates/testns/src/nm.rs drives it). Nothing here touches the host's interfaces, its
# /etc/NetworkManager, /run or its system bus: NM runs in a mount namespace with its own /run,
# its config bind-mounted from $NMSB_DIR, and manages only the veth end `nm0`, whose peer
# `peer0` (198.51.100.1, documentation range) lives in a second namespace with an HTTP
# endpoint for NM's connectivity check (portal-server.py, behaviour read from $NMSB_DIR/mode).
#
# usage: nm-sandbox.sh up|down|exec CMD..|srv CMD..|start-nm|kill-nm|start-bus|kill-bus|start-http|kill-http
# env:   NMSB_DIR (required), NMSB_INTERVAL (NM's check interval, s), NMSB_DENY_CHECK=1 (the bus
#        policy refuses CheckConnectivity, as an unprivileged caller would be refused)
set -euo pipefail
W=${NMSB_DIR:?NMSB_DIR must name the sandbox directory}; HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3  # Debian's, which has python3-gi (not a pyenv or venv one)
st() { . "$W/state.env"; }
setvar() { sed -i "/^$1=/d" "$W/state.env"; echo "$1=$2" >> "$W/state.env"; }
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $s != Z* ]]; }  # zombie=dead
# Bounded wait for a condition during set-up (polls every 20 ms, at most $1 seconds).
wait_for() { local n=$(($1*50)); shift; until "$@" >/dev/null 2>&1; do ((n--)) || return 1; sleep 0.02; done; }
nmis() { busctl --address="unix:path=$W/system_bus_socket" get-property org.freedesktop.NetworkManager \
         /org/freedesktop/NetworkManager org.freedesktop.NetworkManager "$1" 2>/dev/null | grep -qx "u $2"; }
# NM's name has no owner any more (or the bus is gone too).
nm_gone() { ! busctl --address="unix:path=$W/system_bus_socket" call org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus NameHasOwner s org.freedesktop.NetworkManager 2>/dev/null | grep -qx "b true"; }
in_nm() { st; exec nsenter -t "$HOLDER" -n -m -u --wd=/ -- \
          env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket "$@"; }
in_srv() { st; exec nsenter --net="/run/netns/$SRV_NS" -- "$@"; }
stop_pid() {
  local p=$1; kill "${2:--TERM}" "$p" 2>/dev/null || return 0
  for _ in $(seq 100); do alive "$p" || return 0; sleep 0.02; done; kill -9 "$p" 2>/dev/null || true
}
start_http() {
  st; nsenter --net="/run/netns/$SRV_NS" -- "$PY" "$HERE/portal-server.py" 198.51.100.1 8080 "$W/mode" \
      >> "$W/log/http.log" 2>&1 </dev/null &
  setvar HTTP_PID $!
  wait_for 5 sh -c "ip netns exec $SRV_NS ss -Hltn 'sport = :8080' | grep -q LISTEN"
}
start_bus() {
  st; nsenter -t "$HOLDER" -n -m -u -- dbus-daemon --config-file="$W/dbus.conf" --nofork --nopidfile \
      --nosyslog >> "$W/log/dbus.log" 2>&1 </dev/null &
  setvar DBUS_PID $!
  wait_for 5 busctl --address="unix:path=$W/system_bus_socket" status || { cat "$W/log/dbus.log" >&2; exit 1; }
}
start_nm() {
  st; nsenter -t "$HOLDER" -n -m -u --wd=/ -- env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket \
      NetworkManager --no-daemon --debug --config=/etc/NetworkManager/NetworkManager.conf \
      --config-dir="$W/etc-nm/conf.d" --system-config-dir="$W/sysconf.d" >> "$W/log/nm.log" 2>&1 </dev/null &
  setvar NM_PID $!
  wait_for 30 nmis Connectivity 4 || { echo "NM did not reach full connectivity (see $W/log/nm.log)" >&2; exit 1; }
}
up() {
  [ ! -e "$W/state.env" ] || { echo "already up" >&2; exit 1; }
  rm -rf "$W"; mkdir -p "$W"/{etc-nm/system-connections,etc-nm/conf.d,varlib,sysconf.d,log}
  chmod 700 "$W/etc-nm/system-connections"
  echo ok > "$W/mode"; : > "$W/resolv.conf"
  local deny=""
  [ "${NMSB_DENY_CHECK:-0}" != 1 ] || deny='<deny send_destination="org.freedesktop.NetworkManager" send_interface="org.freedesktop.NetworkManager" send_member="CheckConnectivity"/>'
  cat > "$W/dbus.conf" <<CONF
<busconfig><type>system</type><auth>EXTERNAL</auth>
  <listen>unix:path=/run/dbus/system_bus_socket</listen><listen>unix:path=$W/system_bus_socket</listen>
  <policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  $deny</policy>
</busconfig>
CONF
  cat > "$W/etc-nm/NetworkManager.conf" <<CONF
[main]
plugins=keyfile
dns=none
rc-manager=unmanaged
systemd-resolved=false
hostname-mode=none
auth-polkit=root-only
no-auto-default=*
[keyfile]
unmanaged-devices=except:interface-name:nm0
[connectivity]
enabled=true
uri=http://198.51.100.1:8080/check
response=NetworkManager is online
interval=${NMSB_INTERVAL:-5}
CONF
  cat > "$W/etc-nm/system-connections/nm0.nmconnection" <<CONF
[connection]
id=sandbox-nm0
uuid=$(cat /proc/sys/kernel/random/uuid)
type=ethernet
interface-name=nm0
[ipv4]
method=manual
address1=198.51.100.2/24,198.51.100.1
[ipv6]
method=disabled
CONF
  chmod 600 "$W/etc-nm/system-connections/nm0.nmconnection"
  local srv=nmsb-srv-$$; ip netns add "$srv"; echo "SRV_NS=$srv" > "$W/state.env"
  # /sys is re-mounted read-only for this namespace: NM then does not wait for udev.
  unshare --net --mount --uts --propagation private -- /bin/sh -ec '
    mount -t tmpfs nmsb-run /run; mkdir -p /run/dbus /run/NetworkManager
    mount -t sysfs -o ro nmsb-sys /sys
    mount --bind "$0/etc-nm" /etc/NetworkManager
    mount --bind "$0/varlib" /var/lib/NetworkManager
    mount --bind "$0/resolv.conf" /etc/resolv.conf
    hostname nm-sandbox; ip link set lo up; : > "$0/ready"; exec sleep infinity' "$W" </dev/null >/dev/null 2>&1 &
  setvar HOLDER $!; st; wait_for 5 test -e "$W/ready"
  nsenter -t "$HOLDER" -n -- ip link add nm0 type veth peer name peer0 netns "$SRV_NS"
  ip -n "$SRV_NS" link set lo up; ip -n "$SRV_NS" addr add 198.51.100.1/24 dev peer0
  ip -n "$SRV_NS" link set peer0 up; nsenter -t "$HOLDER" -n -- ip link set nm0 up
  start_http; start_bus; start_nm
}
down() {
  [ -e "$W/state.env" ] && st || return 0
  for p in ${NM_PID:-} ${DBUS_PID:-} ${HTTP_PID:-} ${HOLDER:-}; do stop_pid "$p"; done
  ip netns del "$SRV_NS" 2>/dev/null || true; rm -f "$W/state.env"
}
case "${1:-}" in
  up) up;; down) down;;
  exec) shift; in_nm "$@";; srv) shift; in_srv "$@";;
  start-nm) start_nm;; kill-nm) st; stop_pid "$NM_PID" -KILL; wait_for 5 nm_gone;;
  start-bus) start_bus;; kill-bus) st; stop_pid "$DBUS_PID" -KILL;;
  start-http) start_http;; kill-http) st; stop_pid "$HTTP_PID";;
  *) echo "usage: $0 up|down|exec CMD..|srv CMD..|start-nm|kill-nm|start-bus|kill-bus|start-http|kill-http" >&2; exit 2;;
esac
