#!/usr/bin/env python3
"""A small Confluent-compatible Schema Registry, for partnerpulse's TESTS.

This is not Confluent's Schema Registry and not meant for production: it
keeps everything in memory, checks no compatibility, and implements only the
part of the documented REST API that Avro serializers and partnerpulse use
(DESIGN.md §8 says why the project ships its own):

  POST /subjects/{subject}/versions        {"schema": "..."}  -> {"id": N}
  POST /subjects/{subject}                 {"schema": "..."}  -> the registered version
  GET  /subjects                           -> ["subject", ...]
  GET  /subjects/{subject}/versions        -> [1, 2, ...]
  GET  /subjects/{subject}/versions/{v}    (v = number or "latest")
  GET  /schemas/ids/{id}                   -> {"schema": "..."}
  GET  /schemas/ids/{id}/versions          -> [{"subject": s, "version": v}]
  GET  /config, PUT /config                (accepted, BACKWARD)

Errors are the documented JSON bodies: 40401 subject not found, 40402
version not found, 40403 schema not found, 42201 invalid schema, 40101
unauthorized, 50001 (the injected failures below). Every answer has the
content type application/vnd.schemaregistry.v1+json.

Test switches:
  --fail-first N          answer the first N requests with HTTP 500 (50001)
  --user U --password P   require HTTP basic authentication
  --tls-cert F --tls-key K  serve HTTPS with this certificate and key (PEM)
  POST /_control/fail {"count": N}  the next N requests get 500
  GET  /_control/stats              request counts by "METHOD path"

Usage: registry.py [--host 127.0.0.1] [--port 0] [--port-file FILE] ...
With --port 0 a free port is chosen; it is printed on stdout
("listening on HOST:PORT") and written to --port-file.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CT = "application/vnd.schemaregistry.v1+json"


class State:
    def __init__(self, fail_first: int, user: str | None, password: str | None):
        self.lock = threading.Lock()
        self.schemas: dict[int, dict] = {}      # id -> {"schema": str, "schemaType": str}
        self.by_text: dict[tuple, int] = {}     # (type, canonical text) -> id
        self.subjects: dict[str, list[int]] = {}  # subject -> ids by version (1-based)
        self.fail_next = fail_first
        self.user, self.password = user, password
        self.stats: dict[str, int] = {}

    @staticmethod
    def canonical(text: str) -> str:
        try:
            return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        except ValueError:
            return text


class Handler(BaseHTTPRequestHandler):
    server_version = "pp-test-registry/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; --verbose turns it on
        if self.server.verbose:
            sys.stderr.write("registry: " + fmt % args + "\n")

    @property
    def st(self) -> State:
        return self.server.state

    def reply(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CT)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, code: int, message: str) -> None:
        self.reply(status, {"error_code": code, "message": message})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def handle_any(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        body = self.body() if method in ("POST", "PUT") else None
        with self.st.lock:
            key = f"{method} {path}"
            self.st.stats[key] = self.st.stats.get(key, 0) + 1
            if path.startswith("/_control/"):
                return self.control(method, path, body)
            if self.st.fail_next > 0:
                self.st.fail_next -= 1
                return self.error(500, 50001, "injected failure (test switch)")
            if self.st.user is not None:
                want = base64.b64encode(f"{self.st.user}:{self.st.password}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {want}":
                    return self.error(401, 40101, "Unauthorized")
            return self.route(method, path, body)

    def control(self, method, path, body):
        if method == "POST" and path == "/_control/fail":
            self.st.fail_next = int((body or {}).get("count", 0))
            return self.reply(200, {"fail_next": self.st.fail_next})
        if method == "GET" and path == "/_control/stats":
            return self.reply(200, self.st.stats)
        return self.error(404, 404, "unknown control endpoint")

    def route(self, method, path, body):
        parts = [unquote(p) for p in path.strip("/").split("/")] if path != "/" else []
        st = self.st
        if parts == ["config"] or parts[:1] == ["config"]:
            if method == "PUT":
                return self.reply(200, body or {})
            return self.reply(200, {"compatibilityLevel": "BACKWARD"})
        if parts == ["subjects"] and method == "GET":
            return self.reply(200, sorted(st.subjects))
        if len(parts) >= 2 and parts[0] == "subjects":
            subject = parts[1]
            if len(parts) == 3 and parts[2] == "versions" and method == "POST":
                return self.register(subject, body)
            if len(parts) == 2 and method == "POST":
                return self.lookup(subject, body)
            if subject not in st.subjects:
                return self.error(404, 40401, f"Subject '{subject}' not found.")
            versions = st.subjects[subject]
            if len(parts) == 3 and parts[2] == "versions" and method == "GET":
                return self.reply(200, list(range(1, len(versions) + 1)))
            if len(parts) == 4 and parts[2] == "versions" and method == "GET":
                v = parts[3]
                if v == "latest" or v == "-1":
                    n = len(versions)
                elif v.isdigit() and 1 <= int(v) <= len(versions):
                    n = int(v)
                else:
                    return self.error(404, 40402, f"Version {v} not found.")
                return self.reply(200, self.version_body(subject, n))
        if len(parts) >= 3 and parts[:2] == ["schemas", "ids"] and method == "GET":
            try:
                sid = int(parts[2])
            except ValueError:
                return self.error(404, 40403, "Schema not found")
            if sid not in st.schemas:
                return self.error(404, 40403, "Schema not found")
            if len(parts) == 3:
                out = {"schema": st.schemas[sid]["schema"]}
                if st.schemas[sid]["schemaType"] != "AVRO":
                    out["schemaType"] = st.schemas[sid]["schemaType"]
                return self.reply(200, out)
            if len(parts) == 4 and parts[3] == "versions":
                return self.reply(200, [{"subject": s, "version": i + 1}
                                        for s, ids in sorted(st.subjects.items())
                                        for i, x in enumerate(ids) if x == sid])
        return self.error(404, 404, f"HTTP 404 Not Found: {method} {path}")

    def version_body(self, subject, n):
        sid = self.st.subjects[subject][n - 1]
        out = {"subject": subject, "version": n, "id": sid, "schema": self.st.schemas[sid]["schema"]}
        if self.st.schemas[sid]["schemaType"] != "AVRO":
            out["schemaType"] = self.st.schemas[sid]["schemaType"]
        return out

    def parse_schema(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            self.error(422, 42201, "Invalid schema: expected {\"schema\": \"...\"}")
            return None
        stype = body.get("schemaType") or "AVRO"
        if stype == "AVRO":
            try:
                json.loads(body["schema"])
            except ValueError:
                self.error(422, 42201, "Invalid schema: not JSON")
                return None
        return stype, body["schema"]

    def register(self, subject, body):
        parsed = self.parse_schema(body)
        if parsed is None:
            return
        stype, text = parsed
        st = self.st
        key = (stype, st.canonical(text))
        sid = st.by_text.get(key)
        if sid is None:
            sid = len(st.schemas) + 1
            st.schemas[sid] = {"schema": text, "schemaType": stype}
            st.by_text[key] = sid
        versions = st.subjects.setdefault(subject, [])
        if sid not in versions:
            versions.append(sid)
        return self.reply(200, {"id": sid})

    def lookup(self, subject, body):
        parsed = self.parse_schema(body)
        if parsed is None:
            return
        stype, text = parsed
        st = self.st
        if subject not in st.subjects:
            return self.error(404, 40401, f"Subject '{subject}' not found.")
        sid = st.by_text.get((stype, st.canonical(text)))
        if sid is None or sid not in st.subjects[subject]:
            return self.error(404, 40403, "Schema not found")
        return self.reply(200, self.version_body(subject, st.subjects[subject].index(sid) + 1))

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.fail_first, args.user, args.password)
    server.verbose = args.verbose
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    host, port = server.server_address[:2]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"listening on {'https' if args.tls_cert else 'http'}://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
