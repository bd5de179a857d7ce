#!/usr/bin/python3
"""GLib's GNetworkMonitor, as a reference to compare netreach with: prints one JSON line with
its backend and properties at start, then one on every change, until killed. Runs inside the
NetworkManager sandbox (nm-sandbox.sh exec), where GLib picks its NetworkManager backend."""
import json, sys, time, gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib

m = Gio.NetworkMonitor.get_default()
NAMES = {1: "local", 2: "limited", 3: "portal", 4: "full"}


def snap(tag):
    c = int(m.props.connectivity)
    print(json.dumps({"time": time.time(), "event": tag, "type": m.__gtype__.name,
                      "available": bool(m.props.network_available), "connectivity": NAMES.get(c, str(c)),
                      "metered": bool(m.props.network_metered)}), flush=True)


snap("initial")
m.connect("network-changed", lambda _m, avail: snap("network-changed"))
for p in ("network-available", "connectivity", "network-metered"):
    m.connect("notify::" + p, lambda _m, ps: snap("notify::" + ps.name))
GLib.MainLoop().run()
