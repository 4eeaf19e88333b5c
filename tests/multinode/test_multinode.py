"""Two `facerec serve` nodes on one PostgreSQL gallery (issue 10, part 2).

A real PostgreSQL is started by scripts/pg_test_server.sh (initdb in a
temporary folder, as an unprivileged user), or $FACEREC_PG_URI is used (a
server where the test may CREATE DATABASE). Checks:
- enrol through node A: node B names the person within 1 s;
- remove through A: B stops naming the person within 1 s, and never names
  them again;
- B's database connections killed (pg_terminate_backend), a person enrolled
  through A meanwhile: B reconnects, catches up, and names them; /v1/health
  says how far behind B was.

Needs build/facerec (or $FACEREC_BIN), the default models and ../shared (or
$FACEREC_SHARED); skips loudly without them or without PostgreSQL.
Run: /usr/bin/python3 -m pytest -q tests/multinode
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from servesupport import BIN, CELEB, ROOT, Serve, loud_skip  # noqa: E402

if not BIN.exists() or not CELEB.is_dir():
    loud_skip("multi-node tests", f"{BIN} or {CELEB} is ABSENT")

PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"


def psql(uri, sql):
    return subprocess.run([PSQL, uri, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def pg_server():
    if os.environ.get("FACEREC_PG_URI"):
        yield os.environ["FACEREC_PG_URI"]
        return
    d = tempfile.mkdtemp(prefix="facerec_pg_")
    r = subprocess.run([str(ROOT / "scripts" / "pg_test_server.sh"), "start", d], capture_output=True, text=True)
    if r.returncode != 0:
        msg = f"!!!!! SKIPPING multi-node tests: PostgreSQL could not be started: {r.stderr.strip()} !!!!!"
        print("\n" + msg + "\n")
        pytest.skip(msg)
    try:
        yield r.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(ROOT / "scripts" / "pg_test_server.sh"), "stop", d], capture_output=True)


_counter = [0]


def fresh_db(server_uri):
    _counter[0] += 1
    name = f"mn_{os.getpid()}_{_counter[0]}"
    psql(server_uri, f'CREATE DATABASE "{name}"')
    head, _, tail = server_uri.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + (("?" + tail) if tail else "")


class Node(Serve):
    def __init__(self, db, *args):
        super().__init__(db, "--workers", "1", "--threads", "1", *args)
        self.s = requests.Session()

    def health(self):
        return self.s.get(self.base + "/v1/health", timeout=30).json()

    def enroll(self, name, photo):
        r = self.s.post(f"{self.base}/v1/people/{name}/faces", data=photo.read_bytes(),
                        headers={"Content-Type": "image/jpeg"}, timeout=120)
        assert r.status_code == 201, r.text
        return r.json()

    def remove(self, name):
        r = self.s.delete(f"{self.base}/v1/people/{name}", timeout=60)
        assert r.status_code == 200, r.text

    def names(self, photo):
        r = self.s.post(self.base + "/v1/identify", data=photo.read_bytes(), headers={"Content-Type": "image/jpeg"},
                        timeout=120)
        assert r.status_code == 200, r.text
        return [f["identity"] for f in r.json()["faces"] if f.get("identity")]


def wait_applied(node, seq, limit_s):
    """Seconds until node's index includes change `seq` (health applied_seq), or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if node.health()["gallery"]["applied_seq"] >= seq:
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


@pytest.fixture
def two_nodes(pg_server):
    db = fresh_db(pg_server)
    a = Node(db)
    b = Node(db)
    yield db, a, b
    assert a.stop() == 0, "".join(a.log[-20:])
    assert b.stop() == 0, "".join(b.log[-20:])


def photos(person):
    return sorted((CELEB / "train" / person).glob("*.jpg"), key=lambda p: int(p.stem))


def test_enrol_remove_and_reconnect_across_nodes(two_nodes):
    db, a, b = two_nodes
    madonna, elton = photos("Madonna"), photos("Elton John")
    probe_m, probe_e = madonna[5], elton[5]
    hb = b.health()
    assert hb["gallery"]["backend"] == "postgresql" and hb["gallery"]["following"] is True
    assert b.names(probe_m) == []

    # Enrol through A: B applies the change within 1 s and names her.
    for p in madonna[:3]:
        a.enroll("Madonna", p)
    seq = a.health()["gallery"]["applied_seq"]
    took = wait_applied(b, seq, 5.0)
    assert took is not None and took < 1.0, f"B took {took} s to apply change {seq}"
    assert b.names(probe_m) == ["Madonna"]
    assert b.health()["templates"] == 3

    # Remove through A: B stops naming her within 1 s, and never names her again.
    a.remove("Madonna")
    seq = a.health()["gallery"]["applied_seq"]
    took = wait_applied(b, seq, 5.0)
    assert took is not None and took < 1.0, f"B took {took} s to apply the removal"
    for _ in range(3):
        assert "Madonna" not in b.names(probe_m)
    assert b.health()["people"] == 0

    # Kill every database connection of B (its store and its LISTEN); enrol
    # through A meanwhile: B reconnects and catches up from the change log.
    killed = psql(db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                      f"WHERE application_name LIKE 'facerec pid {b.proc.pid}%'")
    assert int(killed) >= 2, f"expected B's store and LISTEN connections, killed {killed}"
    for p in elton[:2]:
        a.enroll("Elton John", p)
    seq = a.health()["gallery"]["applied_seq"]
    took = wait_applied(b, seq, 10.0)
    assert took is not None, "B never caught up after its connections were killed: " + "".join(b.log[-10:])
    assert b.names(probe_e) == ["Elton John"]
    h = b.health()
    assert h["gallery"]["connected"] is True and h["gallery"]["behind"] == 0 and h["status"] == "ok", h
    # B's connections are back (store + LISTEN).
    assert int(psql(db, "SELECT count(*) FROM pg_stat_activity "
                        f"WHERE application_name LIKE 'facerec pid {b.proc.pid}%'")) >= 2


def test_a_stopped_database_shows_in_health(pg_server):
    """While B cannot read the change log, /v1/health says stale with the error,
    and B keeps answering from its index."""
    db = fresh_db(pg_server)
    b = Node(db, "--follow-ms", "200")
    try:
        assert b.health()["status"] == "ok"
        name = db.rsplit("/", 1)[1].split("?")[0]
        # Forbid new connections to this database, then kill B's: B cannot reconnect.
        psql(pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        psql(pg_server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE application_name LIKE 'facerec pid {b.proc.pid}%'")
        deadline = time.monotonic() + 10
        h = b.health()
        while h["status"] == "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
            h = b.health()
        assert h["status"] == "stale" and h["gallery"]["connected"] is False, h
        assert h["gallery"]["last_error"]
        assert b.names(photos("Madonna")[5]) == []  # still serving
        psql(pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        deadline = time.monotonic() + 10
        while b.health()["status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b.health()["status"] == "ok"
    finally:
        assert b.stop() == 0
