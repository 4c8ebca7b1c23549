#!/usr/bin/env python3
"""A stand-in ACME directory that offers only RFC 9773 renewalInfo (pebble 2.4.0 has none):
GET /dir and GET /renewal-info/<certID> over HTTPS on 127.0.0.1. Prints its port, then one
line per renewalInfo request ("ari <certID>"). Usage: ari_mock.py CERT KEY WINDOW_START WINDOW_END"""
import http.server, json, ssl, sys

cert, key, start, end = sys.argv[1:5]

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        base = f"https://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/dir":
            self.reply({"newNonce": base + "/nonce", "newAccount": base + "/account",
                        "newOrder": base + "/order", "renewalInfo": base + "/renewal-info"})
        elif self.path.startswith("/renewal-info/"):
            print("ari", self.path[len("/renewal-info/"):], flush=True)
            self.reply({"suggestedWindow": {"start": start, "end": end}})
        else:
            self.send_error(404)

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
