"""`facerec serve` limits and access log, end to end (issue 9, "Limits" and
"Logging"): a full queue answers 503 overloaded at once; a client that stops
sending is cut off by the request timeout; every request is one access-log
line (JSON with --json-log) with route, status, ms and faces, and never a
key. Every response is checked against api/openapi.yaml.

Needs what tests/serve/test_serve.py needs; skips loudly without it.
Run: /usr/bin/python3 -m pytest -q tests/serve
"""
import hashlib
import json
import socket
import threading
import time

import pytest
import requests

from test_serve import check_contract, enrol, photos, server  # noqa: F401  (server: the fixture)


def test_every_route_documents_the_errors_any_route_can_get():
    """The server answers 503 overloaded on ANY route when its queue is full
    (the reject thread runs before routing), 500 internal from its exception
    handler on any route, and 413 for any body over --max-body."""
    from test_serve import SPEC
    missing = []
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            need = {"500", "503"} | ({"413"} if "requestBody" in op else set())
            for status in sorted(need - set(op["responses"])):
                missing.append(f"{method.upper()} {path}: {status}")
    assert not missing, missing


def test_a_full_queue_answers_503_overloaded_at_once(server):
    # One model slot, one pool thread waiting for it, one connection queued:
    # the rest of a burst must be refused at once, not queued, whatever the
    # route.
    s = server("--workers", "1", "--queue", "1", "--timeout", "60")
    body = photos("val")[0][1].read_bytes()
    jobs = [("POST", "/v1/identify")] * 12 + [("GET", "/v1/health"), ("GET", "/v1/people")] * 3
    results = []
    lock = threading.Lock()
    go = threading.Event()

    def one(method, path):
        go.wait()
        t0 = time.monotonic()
        kw = {"data": body, "headers": {"Content-Type": "image/jpeg"}} if method == "POST" else {}
        r = requests.request(method, s.base + path, timeout=120, **kw)
        with lock:
            results.append((method, path, r, time.monotonic() - t0))

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(timeout=180)
    assert len(results) == len(jobs)
    codes = sorted(r.status_code for m, p, r, _ in results if p == "/v1/identify")
    assert set(codes) <= {200, 503}, codes
    assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
    for method, path, r, secs in results:
        check_contract(method, path, r)
        assert r.status_code in (200, 503), (path, r.status_code, r.text)
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "overloaded"
            # Refused at once: far below the 60 s a wait for a worker may take.
            assert secs < 20, secs
    # The server is still up. (Not asserted here: that the NEXT request is
    # served at once. After such a burst an idle server may leave a health
    # check unanswered, or answer 503 overloaded, for up to --timeout
    # seconds; the issue 9 audit found it and reported it for
    # apps/facerec/cmd_serve.cc.)
    deadline = time.monotonic() + 90
    while True:
        try:
            r = requests.get(s.base + "/v1/health", timeout=10)
            check_contract("GET", "/v1/health", r)
            if r.status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the server stopped answering after a burst over its queue"
        time.sleep(1)
    assert s.proc.poll() is None
    assert s.stop() == 0
