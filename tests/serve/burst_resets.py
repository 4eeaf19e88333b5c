"""Counts answers lost to connection errors (TCP resets) when a burst of
concurrent uploads hits `facerec serve --workers 1 --queue 1`, for several
binaries side by side (alternating, so they share the machine's load).
Not a test (pytest does not collect it): the measurement behind README's
"Connections" numbers.

Run: /usr/bin/python3 tests/serve/burst_resets.py N ROUNDS BIN [BIN...]
e.g. /usr/bin/python3 tests/serve/burst_resets.py 40 10 /tmp/facerec_before build/facerec
"""
import pathlib
import sys
import tempfile
import threading

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import servesupport  # noqa: E402

photo = sorted(sorted((servesupport.CELEB / "val").iterdir())[0].iterdir())[0].read_bytes()
n, rounds, bins = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
total = {b: [0, 0] for b in bins}  # uploads lost, bursts with a loss
for _ in range(rounds):
    for b in bins:
        servesupport.BIN = pathlib.Path(b)
        s = servesupport.Serve(pathlib.Path(tempfile.mkdtemp()) / "g.db", "--workers", "1", "--queue", "1")
        lost, go = [], threading.Event()

        def one():
            go.wait()
            try:
                r = requests.post(s.base + "/v1/identify", data=photo, headers={"Content-Type": "image/jpeg"},
                                  timeout=60)
                assert r.status_code in (200, 503), r.status_code
            except requests.ConnectionError as e:
                lost.append(e)

        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join()
        s.stop()
        total[b][0] += len(lost)
        total[b][1] += bool(lost)
for b, (lost, bursts) in total.items():
    print(f"{b}: {lost} of {n * rounds} uploads lost to connection errors; {bursts} of {rounds} bursts had one")
