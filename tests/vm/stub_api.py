#!/usr/bin/python3
"""A minimal stand-in for the mock balenaCloud API, used only when tests/mock-api/mock_api.py
(the real mock, with release lists, downloads and fault injection) is not in the tree.

Answers GET /ping with "OK" and anything else with 404; records every request as one JSON line.
    stub_api.py --port PORT --record FILE
"""
import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--record", required=True)
    args, _ = ap.parse_known_args()

    class H(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            with open(args.record, "a") as f:
                f.write(json.dumps({"time": time.time(), "method": self.command, "path": self.path,
                                    "body": body.decode("utf-8", "replace")}) + "\n")
            code, out = (200, b"OK") if self.path.split("?")[0] == "/ping" else (404, b"not found")
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PATCH = _handle

        def log_message(self, *a) -> None:  # quiet
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), H).serve_forever()


if __name__ == "__main__":
    main()
