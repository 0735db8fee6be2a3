#!/usr/bin/env python3
"""Mock balenaCloud API for takeover's tests and the VM test bed (Python 3 standard library only).

Endpoints (the balenaCloud API calls takeover makes; README.md here):

  GET   /ping                          200 "OK", no auth needed
  GET   /v6/release?$filter=...        {"d":[{"raw_version": V}, ...]} for the slug in the filter
  GET   /v6/device_type?$select=...    {"d":[{"contract": {...}}]} or {"d":[{"id": N}]}
  POST  /download                      the image file for {deviceType, version}; Range supported
  PATCH /v6/device(uuid='...')         200 "OK"; the body is recorded
  GET   /v6/device?$filter=uuid eq '..' {"d":[{"uuid": U, "is_online": B}]} ({"d":[]} if unknown)
  POST  /__mock/devices                set devices' state: {"uuid": U, "is_online": B} (or a list)
  GET   /__mock/devices                every known device and its state
  POST  /__mock/faults                 add faults (a JSON object or a list of them)
  POST  /__mock/reset                  drop all faults and recorded requests
  GET   /__mock/requests               every recorded request as a JSON list

Every request except /__mock/* is recorded (to --record FILE as JSON lines, and in memory).
The Authorization header is never stored: a record has "auth_present" and "auth_ok" (the header
equals "Bearer <--api-key>") instead.

Faults (CLI --fault JSON, repeatable, or POST /__mock/faults), matched in order on the path
(prefix of the path without query) and optionally "method":
  {"path": "/download", "status": 500, "times": 2}          reply with that status (JSON body)
  {"path": "/download", "truncate": 1000}                   send only that many body bytes, close
                                                            (Content-Length still says all)
  {"path": "/download", "stall": 30, "after": 4096}         sleep after sending "after" body bytes
                                                            (other paths: sleep before replying)
  {"path": "/v6/release", "garbage": true}                  200 with a body that is not JSON
  {"path": "/download", "no_range": true}                   ignore Range headers (always 200)
  {"path": "/download", "announce": 1e15, "stall": 10}       announce that Content-Length (free-space
                                                            tests; combine with stall to keep it open)
"times" (default 1) counts how often the fault fires; -1 means forever.

The first line on stdout is the port (useful with --port 0). The server exits by itself after
--max-seconds (default 600) so it never lingers.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_CONTRACT_RAW = {"data": {"media": {"defaultBoot": "sdcard"}}}
DEFAULT_CONTRACT_FLASHER = {
    "data": {"media": {"defaultBoot": "internal", "altBoot": ["usb_mass_storage", "network"]}}
}


class State:
    def __init__(self, api_key, device_types, record_path):
        self.api_key = api_key
        # slug -> {"id": int, "contract": dict, "versions": [str], "images": {version|"*": path}}
        self.device_types = device_types
        self.faults = []
        self.requests = []
        self.devices = {}  # uuid -> {"uuid", "is_online"} (fleet rollout: wait for online)
        self.lock = threading.Lock()
        self.record_file = open(record_path, "a", encoding="utf-8") if record_path else None

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)
            if self.record_file:
                self.record_file.write(json.dumps(entry) + "\n")
                self.record_file.flush()

    def take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f.get("times", 1) == 0:
                    continue
                if not path.startswith(f.get("path", "/")):
                    continue
                if "method" in f and f["method"].upper() != method:
                    continue
                if f.get("times", 1) > 0:
                    f["times"] = f.get("times", 1) - 1
                return dict(f)
        return None

    def add_faults(self, obj):
        items = obj if isinstance(obj, list) else [obj]
        for f in items:
            if not isinstance(f, dict):
                raise ValueError("a fault is a JSON object")
            f.setdefault("times", 1)
        with self.lock:
            self.faults.extend(items)


def slug_from_filter(flt, pattern):
    m = re.search(pattern, flt or "")
    return m.group(1) if m else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-balena-api/1"

    def log_message(self, fmt, *args):  # quiet: records go to the JSONL file
        if os.environ.get("MOCK_API_VERBOSE"):
            sys.stderr.write("mock-api: " + (fmt % args) + "\n")

    # --- helpers -----------------------------------------------------------------------------

    @property
    def state(self):
        return self.server.state

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_bytes(self, status, body, ctype="application/json", extra=None):
        fault = getattr(self, "fault", None) or {}
        if "stall" in fault:
            time.sleep(float(fault["stall"]))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            if "truncate" in fault:
                body = body[: int(fault["truncate"])]
                self.close_connection = True
            self.wfile.write(body)

    def send_json(self, status, obj):
        self.send_bytes(status, json.dumps(obj).encode())

    def send_text(self, status, text):
        self.send_bytes(status, text.encode(), "text/plain")

    def auth_check(self):
        """(present, ok) of the Authorization header."""
        h = self.headers.get("Authorization")
        if h is None:
            return False, False
        return True, self.state.api_key is None or h == "Bearer " + self.state.api_key

    def handle_any(self, method):
        self.fault = None  # one handler serves every request of a keep-alive connection
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        body = self.read_body() if method in ("POST", "PATCH", "PUT") else b""
        if path.startswith("/__mock/"):
            return self.control(method, path, body)
        present, ok = self.auth_check()
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        self.state.record({
            "time": time.time(),
            "method": method,
            "path": path,
            "query": url.query,
            "params": {k: v[0] for k, v in query.items()},
            "headers": headers,
            "auth_present": present,
            "auth_ok": ok,
            "body": body.decode("utf-8", "replace")[:65536],
        })
        fault = self.state.take_fault(method, path)
        # send_bytes applies "stall" and "truncate" to ordinary replies; download() handles
        # them itself while streaming the image.
        self.fault = fault if path != "/download" else None
        if fault and "status" in fault:
            return self.send_json(fault["status"], fault.get("body", {"error": "injected fault"}))
        if fault and fault.get("garbage"):
            return self.send_bytes(200, b"<html>this is not json {{{", "application/json")
        return self.route(method, path, query, body, present, ok, fault)

    def control(self, method, path, body):
        if method == "POST" and path == "/__mock/faults":
            try:
                self.state.add_faults(json.loads(body or b"null"))
            except (ValueError, TypeError) as e:
                return self.send_json(400, {"error": str(e)})
            return self.send_json(200, {"faults": len(self.state.faults)})
        if method == "POST" and path == "/__mock/reset":
            with self.state.lock:
                self.state.faults.clear()
                self.state.requests.clear()
            return self.send_json(200, {"reset": True})
        if path == "/__mock/devices":
            if method == "POST":
                try:
                    items = json.loads(body or b"null")
                    items = items if isinstance(items, list) else [items]
                    with self.state.lock:
                        for d in items:
                            self.state.devices[str(d["uuid"])] = {
                                "uuid": str(d["uuid"]), "is_online": bool(d.get("is_online"))}
                except (ValueError, TypeError, KeyError) as e:
                    return self.send_json(400, {"error": "bad device: %s" % e})
            with self.state.lock:
                devs = sorted(self.state.devices.values(), key=lambda d: d["uuid"])
            return self.send_json(200, devs)
        if method == "GET" and path == "/__mock/requests":
            with self.state.lock:
                reqs = list(self.state.requests)
            return self.send_json(200, reqs)
        return self.send_json(404, {"error": "unknown control endpoint"})

    def route(self, method, path, query, body, present, ok, fault):
        if method == "GET" and path == "/ping":
            return self.send_bytes(200, b"OK", "text/plain")
        needs_auth = path.startswith("/v6/") or path == "/download"
        if needs_auth and not ok:
            return self.send_text(401, "Unauthorized")
        if method == "GET" and path == "/v6/release":
            slug = slug_from_filter(query.get("$filter", [""])[0], r"iodt/slug eq '([^']*)'")
            dt = self.state.device_types.get(slug)
            versions = dt["versions"] if dt else []
            return self.send_json(200, {"d": [{"raw_version": v} for v in versions]})
        if method == "GET" and path == "/v6/device_type":
            slug = slug_from_filter(query.get("$filter", [""])[0],
                                    r"is_referenced_by__alias eq '([^']*)'")
            dt = self.state.device_types.get(slug)
            if dt is None:
                return self.send_json(200, {"d": []})
            select = query.get("$select", ["contract"])[0]
            if select == "id":
                return self.send_json(200, {"d": [{"id": dt["id"]}]})
            return self.send_json(200, {"d": [{"contract": dt["contract"]}]})
        if method == "POST" and path == "/download":
            return self.download(body, fault)
        if method == "GET" and path == "/v6/device":
            uuid = slug_from_filter(query.get("$filter", [""])[0], r"uuid eq '([0-9a-fA-F]+)'")
            with self.state.lock:
                dev = self.state.devices.get(uuid or "")
                found = [dict(dev)] if dev else []
            return self.send_json(200, {"d": found})
        if method == "PATCH" and re.fullmatch(r"/v6/device\(uuid='[0-9a-fA-F]+'\)", path):
            try:
                json.loads(body)
            except ValueError:
                return self.send_json(400, {"error": "body is not JSON"})
            return self.send_text(200, "OK")
        return self.send_json(404, {"error": "no such endpoint: %s %s" % (method, path)})

    def download(self, body, fault):
        try:
            req = json.loads(body)
            slug, version = req["deviceType"], req["version"]
            if req.get("fileType") != ".gz" or "imageType" not in req:
                raise KeyError("fileType/imageType")
        except (ValueError, KeyError, TypeError) as e:
            return self.send_json(400, {"error": "bad download request: %s" % e})
        dt = self.state.device_types.get(slug)
        if dt is None:
            return self.send_json(404, {"error": "unknown device type %s" % slug})
        image = dt["images"].get(version) or dt["images"].get("*")
        if version not in dt["versions"] or image is None:
            return self.send_json(404, {"error": "no image for %s %s" % (slug, version)})
        size = os.path.getsize(image)
        start = 0
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not (fault and fault.get("no_range")):
            start = int(m.group(1))
            if start >= size:
                return self.send_bytes(416, b"", "text/plain",
                                       {"Content-Range": "bytes */%d" % size})
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        announced = size - start
        if fault and "announce" in fault:
            announced = int(fault["announce"])
        self.send_header("Content-Length", str(announced))
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.end_headers()
        limit = size - start
        if fault and "truncate" in fault:
            limit = min(limit, int(fault["truncate"]))
        stall_at = int(fault.get("after", 0)) if fault and "stall" in fault else None
        sent = 0
        with open(image, "rb") as f:
            f.seek(start)
            while sent < limit:
                if stall_at is not None and sent >= stall_at:
                    self.wfile.flush()
                    time.sleep(float(fault["stall"]))
                    stall_at = None
                n = limit - sent
                if stall_at is not None:
                    n = min(n, stall_at - sent)
                chunk = f.read(min(65536, n))
                if not chunk:
                    break
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
                sent += len(chunk)
        if sent < size - start:
            self.close_connection = True

    def do_GET(self):
        self.handle_any("GET")

    def do_HEAD(self):
        self.handle_any("HEAD")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")


def load_device_types(args):
    types = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            cfg = json.load(f)
        if args.api_key is None:
            args.api_key = cfg.get("api_key")
        base = os.path.dirname(os.path.abspath(args.config))
        for slug, dt in cfg.get("device_types", {}).items():
            # Relative image paths are relative to the config file.
            dt["images"] = {v: os.path.join(base, p) for v, p in dt.get("images", {}).items()}
            types[slug] = dt
    for slug in args.device_type or []:
        types.setdefault(slug, {})
    for spec in args.versions or []:
        slug, _, lst = spec.partition("=")
        types.setdefault(slug, {})["versions"] = [v for v in lst.split(",") if v]
    for slug in args.flasher or []:
        types.setdefault(slug, {})["contract"] = DEFAULT_CONTRACT_FLASHER
    for spec in args.image or []:
        key, _, path = spec.partition("=")
        slug, _, version = key.partition("@")
        types.setdefault(slug, {}).setdefault("images", {})[version or "*"] = path
    for n, (slug, dt) in enumerate(sorted(types.items()), start=1):
        dt.setdefault("id", n)
        dt.setdefault("versions", [])
        dt.setdefault("images", {})
        dt.setdefault("contract", DEFAULT_CONTRACT_RAW)
        for v, p in dt["images"].items():
            if not os.path.isfile(p):
                sys.exit("mock-api: image for %s %s is not a file: %s" % (slug, v, p))
    return types


def main():
    p = argparse.ArgumentParser(description="Mock balenaCloud API (see README.md)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed first)")
    p.add_argument("--api-key", help="the key expected in 'Authorization: Bearer <key>'")
    p.add_argument("--config", help="JSON file: {api_key, device_types: {slug: {...}}}")
    p.add_argument("--device-type", action="append", help="a known slug (repeatable)")
    p.add_argument("--versions", action="append", help="SLUG=V1,V2,... in API order")
    p.add_argument("--flasher", action="append", help="SLUG whose contract says flasher")
    p.add_argument("--image", action="append", help="SLUG[@VERSION]=PATH (repeatable)")
    p.add_argument("--fault", action="append", default=[], help="a fault as JSON (repeatable)")
    p.add_argument("--device", action="append", default=[],
                   help="UUID of a registered device, offline until POST /__mock/devices")
    p.add_argument("--record", help="append every request as a JSON line to this file")
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()

    state = State(args.api_key, load_device_types(args), args.record)
    for f in args.fault:
        state.add_faults(json.loads(f))
    for uuid in args.device:
        state.devices[uuid] = {"uuid": uuid, "is_online": False}
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = state
    print(server.server_address[1], flush=True)

    def deadline():
        time.sleep(args.max_seconds)
        sys.stderr.write("mock-api: --max-seconds reached, exiting\n")
        os._exit(0)

    threading.Thread(target=deadline, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
