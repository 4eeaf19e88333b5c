"""`facerec serve` limits and access log, end to end (issue 9, "Limits" and
"Logging"): a full queue answers 503 overloaded at once, and the client
gets that answer even while it is still uploading; a client that stops
sending is cut off by the request timeout; a request refused before its
body is read (401, 403) is the last on its connection, which ends cleanly;
every request is one access-log line (JSON with --json-log) with route,
status, ms and faces, and never a key. Every response is checked against
api/openapi.yaml.

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

from test_serve import check_contract, photos, server  # noqa: F401  (server: the fixture)


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
    # route. The first upload starts 50 ms ahead of the burst, so that one
    # is admitted whatever order the burst's connections arrive in (the whole
    # burst is accepted at once now; with cpp-httplib's listen backlog of 5,
    # the kernel dropped most of it and its SYN retries came a second later,
    # by when the pool was free again, but some were reset).
    s = server("--workers", "1", "--queue", "1", "--timeout", "60")
    body = photos("val")[0][1].read_bytes()
    jobs = [("POST", "/v1/identify")] * 12 + [("GET", "/v1/health"), ("GET", "/v1/people")] * 3
    results, resets = [], []
    lock = threading.Lock()
    go_first, go = threading.Event(), threading.Event()

    def one(method, path, first=False):
        (go_first if first else go).wait()
        t0 = time.monotonic()
        kw = {"data": body, "headers": {"Content-Type": "image/jpeg"}} if method == "POST" else {}
        try:
            r = requests.request(method, s.base + path, timeout=120, **kw)
        except requests.ConnectionError as e:
            with lock:
                resets.append((method, path, repr(e)))
            return
        with lock:
            results.append((method, path, r, time.monotonic() - t0))

    threads = [threading.Thread(target=one, args=job, kwargs={"first": i == 0}) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    go_first.set()
    time.sleep(0.05)
    go.set()
    for t in threads:
        t.join(timeout=180)
    assert len(results) + len(resets) == len(jobs)
    # No request is reset. Before, 2 of 30 runs lost answers to TCP resets:
    # the reject path closed with the upload unread, which sends RST (it now
    # closes with a lingering close that drains it), and the kernel reset
    # connections it had dropped from cpp-httplib's listen backlog of 5 (it
    # is SOMAXCONN now).
    assert not resets, resets
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
    # The server is still up and serves the next requests at once. (Before the
    # pool's wake-ups were fixed, a notify_one could wake the reject thread
    # instead of a pool thread, and an idle server left a health check
    # unanswered, or answered 503, for up to --timeout seconds after such a
    # burst: found by the issue 9 audit, 4 of 6 rounds.)
    r = requests.get(s.base + "/v1/health", timeout=15)
    check_contract("GET", "/v1/health", r)
    assert r.status_code == 200, r.text
    r = requests.post(s.base + "/v1/identify", data=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
    check_contract("POST", "/v1/identify", r)
    assert r.status_code == 200, r.text
    assert s.proc.poll() is None
    assert s.stop() == 0


def test_queue_0_serves_when_a_worker_is_free(server):
    # --queue 0: no connection waits for a pool thread, but one that finds a
    # free thread is served (every request got 503 before: the pool admitted
    # only into its wait queue). A thread is free again once the previous
    # client's connection has closed, hence the retries.
    s = server("--workers", "1", "--queue", "0")
    for _ in range(3):
        end = time.monotonic() + 5
        while True:
            r = requests.get(s.base + "/v1/health", timeout=10)
            check_contract("GET", "/v1/health", r)
            if r.status_code == 200 or time.monotonic() > end:
                break
            time.sleep(0.05)
        assert r.status_code == 200, r.text
    assert s.stop() == 0


def test_a_client_that_stops_sending_is_cut_off_by_the_timeout(server):
    s = server("--timeout", "2")
    host, port = s.base.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    try:
        sock.sendall(b"POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b"\xff\xd8" + b"\0" * 100)
        t0 = time.monotonic()
        got = b""
        while True:  # until the server answers and/or closes the connection
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        waited = time.monotonic() - t0
    finally:
        sock.close()
    assert waited < 15, f"the server held a stalled upload for {waited:.1f} s with --timeout 2"
    # Other clients were never blocked by it.
    assert requests.get(s.base + "/v1/health", timeout=10).status_code == 200
    assert s.stop() == 0


def test_each_request_is_one_json_access_log_line_without_keys(server, tmp_path):
    key = "sekrit-admin-key"
    kf = tmp_path / "keys.json"
    kf.write_text(json.dumps({"keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "role": "admin",
                                        "name": "ops"}]}))
    s = server("--keys", str(kf), "--json-log")
    auth = {"Authorization": f"Bearer {key}"}
    name, photo = photos("train")[0]
    sent = []  # (route, status) of every request, in order

    def call(method, path, route, **kw):
        r = requests.request(method, s.base + path, timeout=120, **kw)
        check_contract(method, path, r)
        sent.append((route, r.status_code))
        return r

    call("GET", "/v1/health", "GET /v1/health")
    call("GET", "/v1/people", "GET /v1/people")  # no key: 401
    r = enrol_with(call, name, photo, auth)
    assert r.status_code == 201, r.text
    r = call("POST", "/v1/identify", "POST /v1/identify", data=photo.read_bytes(), headers=auth)
    assert r.status_code == 200
    faces = len(r.json()["faces"])
    call("DELETE", "/v1/people/Nobody", "DELETE /v1/people/{name}", headers=auth)  # 404
    assert s.stop() == 0
    time.sleep(0.5)  # the log reader drains the closed pipe
    lines = [json.loads(l) for l in s.log if l.strip().startswith("{")]
    logged = [(l["route"], l["status"]) for l in lines if "route" in l]
    assert sorted(logged) == sorted(sent), (logged, sent)
    for l in lines:
        assert {"route", "status", "ms", "faces"} <= set(l), l
        assert isinstance(l["ms"], (int, float)) and l["ms"] >= 0
    ident = [l for l in lines if l["route"] == "POST /v1/identify" and l["status"] == 200]
    assert [l["faces"] for l in ident] == [faces]
    text = "".join(s.log)
    assert key not in text and hashlib.sha256(key.encode()).hexdigest() not in text
    assert name not in text  # no person's name either


def enrol_with(call, name, photo, headers):
    path = f"/v1/people/{requests.utils.quote(name, safe='')}/faces"
    return call("POST", path, "POST /v1/people/{name}/faces", data=photo.read_bytes(),
                headers={"Content-Type": "image/jpeg", **headers})


def test_a_request_refused_before_its_body_leaves_the_connection_usable(server, tmp_path):
    # A request refused before its body is read (401 from the key check) is
    # the last on its connection: the unread body is never parsed as further
    # requests (cpp-httplib 0.11's own loop did that: phantom ' other' 400s
    # in the access log and /metrics), and the client's next request, on a new
    # connection, is served.
    kf = tmp_path / "keys.json"
    kf.write_text(json.dumps({"keys": [{"sha256": hashlib.sha256(b"k").hexdigest(), "role": "recognize",
                                        "name": "r"}]}))
    s = server("--keys", str(kf), "--json-log")
    body = photos("val")[0][1].read_bytes()
    sess = requests.Session()  # one keep-alive connection, as browsers and SDKs use
    r = sess.post(s.base + "/v1/identify", data=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
    check_contract("POST", "/v1/identify", r)
    assert r.status_code == 401
    assert r.headers.get("Connection") == "close"
    r = sess.get(s.base + "/v1/health", timeout=60)
    check_contract("GET", "/v1/health", r)
    assert r.status_code == 200, r.text
    assert s.stop() == 0
    time.sleep(0.5)
    routes = [json.loads(l)["route"] for l in s.log if l.strip().startswith("{")]
    assert routes == ["POST /v1/identify", "GET /v1/health"], routes


def _raw_exchange(base, request, upload=b"", timeout=30):
    """Sends `request` and then `upload` on one new connection, as a client
    that writes its whole request before reading; then reads until the server
    closes. (answer bytes, None for a clean close or the error that ended it)."""
    host, port = base.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        sock.sendall(request)
        sock.sendall(upload)
        got = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got, None
            got += chunk
    except OSError as e:
        return b"", e
    finally:
        sock.close()


@pytest.mark.parametrize("key, status", [(None, 401), ("r", 403)])
def test_a_refused_upload_gets_its_answer_and_one_log_line(server, tmp_path, key, status):
    # 8 MiB (under --max-body's 10 MiB): far more than the socket buffers
    # hold, so the server answers while the client is still sending. The
    # client sends it all, reads exactly one answer, then a clean close (no
    # reset: the server drains what it does not read), and a request sent
    # behind the body on the same connection is never answered or logged.
    kf = tmp_path / "keys.json"
    kf.write_text(json.dumps({"keys": [{"sha256": hashlib.sha256(b"r").hexdigest(), "role": "recognize",
                                        "name": "r"}]}))
    s = server("--keys", str(kf), "--json-log")
    upload = b"\xff\xd8" + b"\0" * (8 << 20)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    path = "/v1/identify" if status == 401 else "/v1/people"
    method = "POST /v1/identify" if status == 401 else "GET /v1/people"
    head = (f"{method} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: image/jpeg\r\n"
            f"Content-Length: {len(upload)}\r\n\r\n").encode()
    then = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    got, err = _raw_exchange(s.base, head, upload + then)
    assert err is None, f"the connection was not closed cleanly: {err!r}"
    assert got.startswith(f"HTTP/1.1 {status} ".encode()), got[:200]
    assert got.count(b"HTTP/1.1 ") == 1, got  # the health request behind the body got nothing
    assert b"Connection: close" in got
    assert requests.get(s.base + "/v1/health", timeout=10).status_code == 200
    assert s.stop() == 0
    time.sleep(0.5)
    logged = [(json.loads(l)["route"], json.loads(l)["status"]) for l in s.log if l.strip().startswith("{")]
    assert logged == [(f"{method.split()[0]} {path}", status), ("GET /v1/health", 200)], logged


def test_expect_100_continue_is_refused_before_the_body_is_sent(server, tmp_path):
    # A client that asks first (curl does for large uploads) gets 401 instead
    # of 100 Continue, so it never sends the body; one log line.
    kf = tmp_path / "keys.json"
    kf.write_text(json.dumps({"keys": [{"sha256": hashlib.sha256(b"r").hexdigest(), "role": "recognize",
                                        "name": "r"}]}))
    s = server("--keys", str(kf), "--json-log")
    head = (b"POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 5000000\r\nExpect: 100-continue\r\n\r\n")
    t0 = time.monotonic()
    got, err = _raw_exchange(s.base, head)
    assert err is None, repr(err)
    assert got.startswith(b"HTTP/1.1 401 "), got[:200]
    assert b"100 Continue" not in got
    assert time.monotonic() - t0 < 10  # answered at once, not after a read timeout
    assert s.stop() == 0
    time.sleep(0.5)
    logged = [(json.loads(l)["route"], json.loads(l)["status"]) for l in s.log if l.strip().startswith("{")]
    assert logged == [("POST /v1/identify", 401)], logged
