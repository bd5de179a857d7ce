#!/usr/bin/python3
"""Connectivity-check endpoint for the NetworkManager sandbox (nm-sandbox.sh). Behaviour is
read from MODE_FILE on every request, so a test switches it by writing one word:
  ok       -> 200 "NetworkManager is online\n"   (NM: FULL=4)
  wrong    -> 200 "<html>hotel wifi</html>"     (NM: PORTAL=2)
  redirect -> 302 Location: /portal, empty body (NM: PORTAL=2)
  header   -> 200 wrong body + X-NetworkManager-Status: online (NM: FULL=4)
  hang     -> accept, never answer               (NM: LIMITED=3 after timeout)
Usage: portal-server.py ADDR PORT MODE_FILE
"""
import http.server, sys, time

ADDR, PORT, MODE_FILE = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        try:
            mode = open(MODE_FILE).read().strip()
        except OSError:
            mode = "ok"
        hdrs = {}
        if mode == "ok":
            code, body = 200, b"NetworkManager is online\n"
        elif mode == "wrong":
            code, body = 200, b"<html>hotel wifi login</html>\n"
        elif mode == "redirect":
            code, body = 302, b""
            hdrs["Location"] = "http://%s:%d/portal" % (ADDR, PORT)
        elif mode == "header":
            code, body = 200, b"whatever\n"
            hdrs["X-NetworkManager-Status"] = "online"
        elif mode == "hang":
            time.sleep(120)
            return
        else:
            code, body = 500, b"bad mode\n"
        self.send_response(code)
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%.3f %s %s\n" % (time.time(), self.client_address[0], fmt % args))
        sys.stderr.flush()


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer((ADDR, PORT), H).serve_forever()
