"""`facerec models import yolov5face|magface`: checkpoints pickled the way the
original design pickles them (test-only classes under the original module
paths models.yolo / models.common, in original_yolov5face/), imported through
the restricted unpickler, exported to ONNX and run by facerec's C++ engine.

The original-style checkpoints are built in a subprocess (that is where the
`models` package is importable); the importer never imports it."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import FACEREC, ROOT, SHARED, need_facerec

ORIGINAL = os.path.join(os.path.dirname(__file__), "original_yolov5face")
MAKE = os.path.join(ORIGINAL, "make_checkpoint.py")
SHARED_YOLO = os.path.join(SHARED, "models", "yolov5n-0.5-face.onnx")


def make_checkpoint(variant, out, *flags):
    r = subprocess.run([sys.executable, MAKE, variant, str(out), *flags], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return str(out)


def facerec(*args, env=None):
    """(returncode, stdout, stderr) of build/facerec."""
    r = subprocess.run([need_facerec(), *args], capture_output=True, text=True, env=env, timeout=600)
    return r.returncode, r.stdout, r.stderr


def need_model_speed():
    path = os.path.join(os.path.dirname(FACEREC), "bench", "model_speed")
    if not os.access(path, os.X_OK):
        pytest.skip(f"!!! {path} is ABSENT (built with the bench programs, FACEREC_BUILD_BENCH=ON); SKIPPED !!!")
    return path


def cpp_raw_heads(onnx_path, input_raw, size, out_dir, name):
    """The engine's outputs for a float32 [1,3,size,size] input file (bench/model_speed --dump)."""
    r = subprocess.run([need_model_speed(), "--models", "none", "--rounds", "1", "--reps", "1", "--gemm", "64",
                        "--gemm-reps", "1", "--dump", str(out_dir),
                        "--onnx", f"{name}={onnx_path}:{input_raw}:1x3x{size}x{size}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [np.fromfile(os.path.join(out_dir, f"{name}.out{k}.raw"), np.float32) for k in range(3)]


def rel_err(got, ref):
    """max |got - ref| / max |ref| (elementwise ratios blow up near zero)."""
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("variant", ["n-0.5", "n", "s", "s-stem", "m"])
def test_every_layout_unpickles_into_our_modules(tmp_path, variant):
    """n / n-0.5 (StemBlock + ShuffleV2Block), s / m (Focus + Conv/C3/SPP with
    their depth and width multiples) and the later StemBlock yolov5s yaml:
    facerec's module definitions compute what the original's do."""
    from training.import_yolov5face import load_model
    ck = make_checkpoint(variant, tmp_path / f"yolov5{variant}-face.pt", "--half", "--size", "128",
                         "--ref", str(tmp_path / "ref"))
    model, raw = load_model(ck)
    assert "models" not in sys.modules and "models.yolo" not in sys.modules  # never imported the original
    assert raw["epoch"] == -1 and float(raw["best_fitness"][0]) == pytest.approx(0.4)
    x = torch.from_numpy(np.fromfile(tmp_path / "ref" / "input.raw", np.float32).reshape(1, 3, 128, 128))
    with torch.no_grad():
        heads = model(x)
    for k, h in enumerate(heads):
        ref = np.fromfile(tmp_path / "ref" / f"ref{k}.raw", np.float32)
        assert h.shape == (1, 3, 128 // (8 << k), 128 // (8 << k), 16)
        assert rel_err(h.numpy().ravel(), ref) <= 1e-5, (variant, k)


@pytest.mark.parametrize("variant,flags", [("n-0.5", []), ("s", ["--half"])])
def test_import_equals_pytorch_in_the_cpp_engine(tmp_path, variant, flags):
    need_facerec()
    need_model_speed()
    ck = make_checkpoint(variant, tmp_path / f"yolov5{variant}-face.pt", *flags, "--ref", str(tmp_path / "ref"))
    manifest = tmp_path / "my_manifest.json"
    out = tmp_path / "my.onnx"
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "my_yolov5", "--manifest", str(manifest),
                         "--out", str(out))
    assert rc == 0, se
    assert "imported my_yolov5 (detector, yolov5face)" in so
    entry = [m for m in json.load(open(manifest))["models"] if m["id"] == "my_yolov5"]
    assert len(entry) == 1 and entry[0]["sha256"] == sha256(out)
    assert entry[0]["family"] == "yolov5face" and entry[0]["input"]["name"] == "data"
    assert [o["dims"] for o in entry[0]["outputs"]] == [[1, 3, 80, 80, 16], [1, 3, 40, 40, 16], [1, 3, 20, 20, 16]]
    # the rest of the repository's manifest came along (the file was created as a copy of it)
    assert any(m["id"] == "yolov5n-0.5-face" for m in json.load(open(manifest))["models"])
    rc, so, se = facerec("models", "list", "--manifest", str(manifest), "--json")
    listed = {json.loads(line)["id"]: json.loads(line) for line in so.splitlines()}
    assert rc == 0 and listed["my_yolov5"]["state"] == "ready"

    got = cpp_raw_heads(out, tmp_path / "ref" / "input.raw", 640, tmp_path, "imported")
    for k in range(3):
        ref = np.fromfile(tmp_path / "ref" / f"ref{k}.raw", np.float32)
        assert got[k].size == ref.size
        err = rel_err(got[k], ref)
        print(f"{variant} stride {8 << k}: max |facerec - torch| / max |torch| = {err:.2e}")
        assert err <= 1e-5, (variant, k, err)


def test_unknown_class_is_refused(tmp_path):
    ck = make_checkpoint("n-0.5", tmp_path / "evil_class.pt", "--size", "128", "--evil-class")
    manifest, out = tmp_path / "m.json", tmp_path / "x.onnx"
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "x", "--manifest", str(manifest),
                         "--out", str(out))
    assert rc == 1
    assert "'models.common.Evil'" in se and "Nothing from the file was executed" in se, se
    assert not manifest.exists() and not out.exists() and not os.path.exists(str(out) + ".part")


def test_callable_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    ck = make_checkpoint("n-0.5", tmp_path / "evil_reduce.pt", "--size", "128", "--evil-reduce", str(marker))
    manifest = tmp_path / "m.json"
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "x", "--manifest", str(manifest))
    assert rc == 1
    assert "'posix.system'" in se or "'os.system'" in se, se
    assert not marker.exists() and not manifest.exists()
    # MagFace checkpoints go through the same loader.
    rc, so, se = facerec("models", "import", "magface", ck, "--id", "y", "--manifest", str(manifest))
    assert rc == 1 and "Nothing from the file was executed" in se and not marker.exists(), se

    # The payload is live: an unrestricted torch.load (with the original code
    # importable) runs it, so the checks above could have failed.
    env = dict(os.environ, PYTHONPATH=ORIGINAL)
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(ck)!r})"], env=env, capture_output=True)
    assert marker.exists()


def test_bare_pickle_is_refused_unread(tmp_path):
    import pickle
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "bare.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": Payload()}, f, protocol=2)
    rc, so, se = facerec("models", "import", "yolov5face", str(path), "--id", "x", "--manifest",
                         str(tmp_path / "m.json"))
    assert rc == 1 and "not a PyTorch (>= 1.6) zip checkpoint" in se, se
    assert not marker.exists()


def test_missing_python_or_checkpoint_is_a_clear_error(tmp_path):
    ck = make_checkpoint("n-0.5", tmp_path / "ok.pt", "--size", "128")
    env = dict(os.environ, FACEREC_PYTHON=str(tmp_path / "no" / "python3"))
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "x", "--manifest", str(tmp_path / "m.json"),
                         env=env)
    assert rc == 1 and "apt-get install python3 python3-torch python3-onnx" in se, se
    # a python without torch: /usr/bin/python3 -S (no site-packages)
    fake = tmp_path / "python_without_torch"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    fake.chmod(0o755)
    env = dict(os.environ, FACEREC_PYTHON=str(fake))
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "x", "--manifest", str(tmp_path / "m.json"),
                         env=env)
    assert rc == 1 and "apt-get install python3-torch python3-onnx" in se and "PyTorch/ONNX missing" in se, se
    assert not (tmp_path / "m.json").exists()
    rc, so, se = facerec("models", "import", "yolov5face", str(tmp_path / "absent.pt"), "--id", "x")
    assert rc == 1 and "no checkpoint file" in se
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "../x")
    assert rc == 2 and "--id" in se
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(open(ck, "rb").read()[:5000])
    rc, so, se = facerec("models", "import", "yolov5face", str(truncated), "--id", "x", "--manifest",
                         str(tmp_path / "m.json"))
    assert rc == 1 and "not imported" in se and not (tmp_path / "m.json").exists(), se


def test_local_overlay_is_read_by_every_command(tmp_path):
    """Without --manifest the entry goes to $FACEREC_CACHE/manifest.local.json,
    which the default manifest loads on top of the repository's."""
    ck = make_checkpoint("n-0.5", tmp_path / "yolov5n-0.5-face.pt")
    env = dict(os.environ, FACEREC_CACHE=str(tmp_path / "cache"))
    env.pop("FACEREC_MANIFEST", None)
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "my_n05", env=env)
    assert rc == 0, se
    onnx_path = tmp_path / "cache" / "imported" / "my_n05.onnx"
    local = json.load(open(tmp_path / "cache" / "manifest.local.json"))
    assert [m["id"] for m in local["models"]] == ["my_n05"] and local["models"][0]["sha256"] == sha256(onnx_path)
    rc, so, se = facerec("models", "list", "--json", env=env)
    listed = {json.loads(line)["id"]: json.loads(line) for line in so.splitlines()}
    assert rc == 0 and listed["my_n05"]["state"] == "ready" and "fr_detect" in listed
    # re-importing replaces the entry; an id of the repository's manifest is refused
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "my_n05", env=env)
    assert rc == 0 and len(json.load(open(tmp_path / "cache" / "manifest.local.json"))["models"]) == 1
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "yolov5n-0.5-face", env=env)
    assert rc == 1 and "already a model" in se


def test_real_weights_round_trip_and_find_the_same_faces(tmp_path):
    """A checkpoint holding the real yolov5n-0.5-face weights (read out of
    ../shared's ONNX export into the original's classes, saved the original's
    way) imports into a model that finds the same faces as that export."""
    if not os.path.exists(SHARED_YOLO):
        pytest.skip(f"!!! {SHARED_YOLO} ABSENT: set FACEREC_SHARED; this real-weights test is SKIPPED !!!")
    need_facerec()
    ck = make_checkpoint("n-0.5", tmp_path / "yolov5n-0.5-face.pt", "--weights-from-onnx", SHARED_YOLO,
                         "--ref", str(tmp_path / "ref"))
    manifest = tmp_path / "m.json"
    rc, so, se = facerec("models", "import", "yolov5face", ck, "--id", "reimported", "--manifest", str(manifest),
                         "--out", str(tmp_path / "reimported.onnx"))
    assert rc == 0, se
    # raw heads: the re-import against the original export, same input
    mine = cpp_raw_heads(tmp_path / "reimported.onnx", tmp_path / "ref" / "input.raw", 640, tmp_path, "mine")
    theirs = cpp_raw_heads(SHARED_YOLO, tmp_path / "ref" / "input.raw", 640, tmp_path, "theirs")
    for k in range(3):
        err = rel_err(mine[k], theirs[k])
        print(f"real weights, stride {8 << k}: max |reimport - export| / max |export| = {err:.2e}")
        assert err <= 1e-5, k

    photo = os.path.join(SHARED, "data", "crowd", "insightface_t1.jpg")
    person = tmp_path / "people" / "someone"
    person.mkdir(parents=True)
    os.symlink(photo, person / "t1.jpg")
    db = str(tmp_path / "g.db")
    common = ["--manifest", str(manifest), "--embedder", "mobilefacenet_128"]
    rc, so, se = facerec("enroll", str(tmp_path / "people"), "--db", db, "--detector", "yolov5n-0.5-face", *common)
    assert rc == 0, se
    faces = {}
    for det in ("yolov5n-0.5-face", "reimported"):
        rc, so, se = facerec("identify", photo, "--db", db, "--detector", det, "--json", *common)
        assert rc == 0, se
        faces[det] = json.loads(so.splitlines()[0])["faces"]
    print(f"faces found: {len(faces['reimported'])} (re-import), {len(faces['yolov5n-0.5-face'])} (export)")
    assert len(faces["reimported"]) == len(faces["yolov5n-0.5-face"]) >= 5
    for a, b in zip(faces["reimported"], faces["yolov5n-0.5-face"]):
        assert np.abs(np.subtract(a["box"], b["box"])).max() < 0.5
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_magface_through_models_import(tmp_path):
    need_facerec()
    from test_import import magface_layout_checkpoint
    pth = str(tmp_path / "magface_iresnet18_MS1MV2_dp.pth")
    magface_layout_checkpoint(pth)
    manifest = tmp_path / "m.json"
    rc, so, se = facerec("models", "import", "magface", pth, "--id", "my_magface", "--manifest", str(manifest),
                         "--out", str(tmp_path / "mf.onnx"))
    assert rc == 0, se
    assert "imported my_magface (embedder, arcface)" in so
    entry = [m for m in json.load(open(manifest))["models"] if m["id"] == "my_magface"][0]
    assert entry["quality"] == "magnitude" and entry["sha256"] == sha256(tmp_path / "mf.onnx")
