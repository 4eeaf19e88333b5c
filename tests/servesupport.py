"""Shared by tests/serve, tests/multinode and tests/web: where build/facerec
and ../shared are, a loud module-level skip, and a `facerec serve` process on
an ephemeral loopback port.

A plain module, not a conftest.py (conftest.py files of the same name in
several folders clash when pytest collects them together); each test file puts
tests/ on sys.path and imports it, as python/tests does with pysupport.py.
"""
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BUILD_DIR", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
BIN = Path(os.environ.get("FACEREC_BIN", BUILD / "facerec"))
SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
CELEB = SHARED / "data" / "celeb5"


def loud_skip(what, msg):
    """Skips the whole calling module, loudly: `what` (e.g. 'facerec serve
    tests') did not run because of `msg`."""
    msg = f"!!!!! SKIPPING {what}: {msg}. These tests did NOT run. !!!!!"
    print("\n" + msg + "\n", file=sys.stderr)
    pytest.skip(msg, allow_module_level=True)


class Serve:
    """`facerec serve --db DB --listen 127.0.0.1:0 ARGS...`, started and waited
    for until it prints its address. .base: its URL; .log: its stderr lines
    (the access log), drained on a thread so the server never blocks on a
    full pipe."""

    def __init__(self, db, *args):
        self.db = db
        self.args = [str(a) for a in args]
        self.start()

    def start(self):
        self.proc = subprocess.Popen([str(BIN), "serve", "--db", str(self.db), "--listen", "127.0.0.1:0", *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "listening on http://" in line, line + self.proc.stderr.read()
        self.base = line.split("listening on ")[1].split()[0]
        self.log = []
        threading.Thread(target=lambda: [self.log.append(l) for l in self.proc.stderr], daemon=True).start()

    def stop(self, sig=signal.SIGTERM):
        """Sends `sig` unless it has exited already; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)
