"""tools/ultraface_resize: fr_detect (npm faceplugin-face-recognition-js) re-targeted
to a larger input by regenerating its prior boxes.

The npm model comes from the pinned tarball (scripts/npm_fetch.sh and its cache);
the C++ programs from the build; the photo from ../shared. Anything missing makes
the tests that need it skip LOUDLY, never pass.
"""
import hashlib
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.ultraface_resize.convert import (ConversionError, check, generate_priors,  # noqa: E402
                                            prior_count, resize)

SHARED = os.environ.get("FACEREC_SHARED", os.path.join(ROOT, "..", "shared"))
BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
BUILD = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
FACEREC = os.environ.get("FACEREC_BIN", os.path.join(BUILD, "facerec"))
ONNX_RUN = os.path.join(BUILD, "onnx_run")
MANIFEST = json.load(open(os.path.join(ROOT, "models", "manifest.json")))
ENTRY = {m["id"]: m for m in MANIFEST["models"]}
SRC = ENTRY["fr_detect"]["source"]


def skip(what):
    pytest.skip(f"!!! {what}; this test is SKIPPED !!!")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def npm_onnx():
    """fr_detect.onnx as bytes, from the pinned tarball, checked against its pin."""
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "npm_fetch.sh"), "tarball", SRC["npm"],
                        SRC["tarball_sha256"]], capture_output=True, text=True)
    if r.returncode != 0:
        skip(f"the pinned {SRC['npm']} tarball is ABSENT (not cached, npm unreachable): {r.stderr.strip()}")
    with tarfile.open(r.stdout.strip()) as t:
        data = t.extractfile(t.getmember(SRC["path"])).read()
    assert sha256(data) == ENTRY["fr_detect"]["sha256"]
    return data


@pytest.fixture(scope="session")
def npm_model(npm_onnx):
    import onnx
    return onnx.load_from_string(npm_onnx)


def prior_constants(model):
    from onnx import numpy_helper
    return {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
            if n.op_type == "Constant" and numpy_helper.to_array(n.attribute[0].t).ndim == 3}


def test_prior_formula_reproduces_the_graph_constants_exactly(npm_model):
    consts = prior_constants(npm_model)
    assert len(consts) == 3  # prior sizes (twice: centre offset and size) and prior centres
    p = generate_priors(320, 240)
    assert p.shape == (4420, 4) and prior_count(320, 240) == 4420
    sizes = [v for v in consts.values() if np.array_equal(v, p[None, :, 2:])]
    centres = [v for v in consts.values() if np.array_equal(v, p[None, :, :2])]
    assert len(sizes) == 2 and len(centres) == 1  # bit-for-bit, not within a tolerance
    assert check(npm_model) == (320, 240)


def test_prior_formula_at_640x480_is_upstreams_grid():
    # UltraFace's fd_config for 640: feature maps [[80, 40, 20, 10], [60, 30, 15, 8]]
    p = generate_priors(640, 480)
    assert p.shape[0] == 80 * 60 * 3 + 40 * 30 * 2 + 20 * 15 * 2 + 10 * 8 * 3 == prior_count(640, 480)
    assert np.allclose(p[0], [0.5 / 80, 0.5 / 60, 10 / 640, 10 / 480])
    assert np.allclose(p[-1], [9.5 / 10, 7.5 / 8, 256 / 640, 256 / 480])
    assert p.min() >= 0 and p.max() <= 1


def test_the_converted_graph_at_its_own_size_is_the_same_model(npm_model):
    same = resize(npm_model, 320, 240)
    assert prior_constants(same).keys() == prior_constants(npm_model).keys()
    for k, v in prior_constants(npm_model).items():
        assert np.array_equal(prior_constants(same)[k], v)
    # every node and weight is untouched
    assert [n.SerializeToString() for n in same.graph.node] == [n.SerializeToString() for n in npm_model.graph.node]
    assert [i.SerializeToString() for i in same.graph.initializer] == \
        [i.SerializeToString() for i in npm_model.graph.initializer]


def run(model_path, x, tmp):
    if not os.access(ONNX_RUN, os.X_OK):
        skip(f"{ONNX_RUN} is ABSENT: build the project (scripts/test.sh does)")
    os.makedirs(tmp, exist_ok=True)
    np.save(os.path.join(tmp, "in.npy"), x.astype(np.float32))
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    r = subprocess.run([ONNX_RUN, str(model_path), out, os.path.join(tmp, "in.npy")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [np.load(os.path.join(out, f"{k}.npy")) for k in range(2)]


def convert_cli(src, dst, *args):
    return subprocess.run([sys.executable, "-m", "tools.ultraface_resize", str(src), str(dst), *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_converted_at_320x240_gives_identical_outputs(npm_onnx, tmp_path):
    src = tmp_path / "fr_detect.onnx"
    src.write_bytes(npm_onnx)
    r = convert_cli(src, tmp_path / "same.onnx", "--size", "320x240")
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 240, 320)).astype(np.float32)
    a = run(src, x, tmp_path / "a")
    b = run(tmp_path / "same.onnx", x, tmp_path / "b")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_converted_at_640x480_decodes_against_the_new_priors(npm_onnx, tmp_path):
    """The graph's box decoding, recomputed in numpy from its raw head outputs, needs
    the 640x480 priors: with a zero image the decoded boxes sit on the new grid."""
    src = tmp_path / "fr_detect.onnx"
    src.write_bytes(npm_onnx)
    r = convert_cli(src, tmp_path / "big.onnx", "--size", "640x480")
    assert r.returncode == 0, r.stderr
    scores, boxes = run(tmp_path / "big.onnx", np.zeros((1, 3, 480, 640), np.float32), tmp_path / "z")
    n = prior_count(640, 480)
    assert scores.shape == (1, n, 2) and boxes.shape == (1, n, 4)
    centres = (boxes[0, :, :2] + boxes[0, :, 2:]) / 2
    p = generate_priors(640, 480)
    # the regressed offsets are small against the prior spacing: each box centre
    # lies nearer its own prior's centre than to the next prior of its grid
    assert np.median(np.abs(centres - p[:, :2])[:, 0] * 80) < 0.5


def test_refuses_a_model_that_is_not_the_ultraface_graph(npm_onnx, npm_model, tmp_path):
    from onnx import numpy_helper
    import onnx
    # 1. other priors (one anchor moved by 1e-3)
    m = onnx.ModelProto()
    m.CopyFrom(npm_model)
    for n in m.graph.node:
        if n.op_type == "Constant" and numpy_helper.to_array(n.attribute[0].t).ndim == 3:
            v = numpy_helper.to_array(n.attribute[0].t).copy()
            v[0, 7, 0] += 1e-3
            n.attribute[0].t.CopyFrom(numpy_helper.from_array(v, n.attribute[0].t.name))
            break
    with pytest.raises(ConversionError, match="another anchor set"):
        resize(m, 640, 480)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(m.SerializeToString())
    r = convert_cli(bad, tmp_path / "out.onnx", "--size", "640x480")
    assert r.returncode == 2 and "another anchor set" in r.stderr, r.stderr
    assert not (tmp_path / "out.onnx").exists()
    # 2. another network: fr_landmark from the same tarball (one image in, 136 values out)
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "npm_fetch.sh"), "tarball", SRC["npm"],
                        SRC["tarball_sha256"]], capture_output=True, text=True)
    with tarfile.open(r.stdout.strip()) as t:
        (tmp_path / "lm.onnx").write_bytes(t.extractfile(t.getmember(ENTRY["fr_landmark"]["source"]["path"])).read())
    r = convert_cli(tmp_path / "lm.onnx", tmp_path / "out.onnx", "--size", "640x480")
    assert r.returncode == 2 and "not the expected UltraFace graph" in r.stderr, r.stderr
    assert not (tmp_path / "out.onnx").exists()
    # 3. not ONNX at all; 4. a size below the coarsest stride
    (tmp_path / "junk.onnx").write_bytes(npm_onnx[:1000])
    r = convert_cli(tmp_path / "junk.onnx", tmp_path / "out.onnx", "--size", "640x480")
    assert r.returncode == 2 and "ultraface_resize" in r.stderr, r.stderr
    with pytest.raises(ConversionError, match="at least 64"):
        resize(npm_model, 32, 24)


def npm_tarball():
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "npm_fetch.sh"), "tarball", SRC["npm"],
                        SRC["tarball_sha256"]], capture_output=True, text=True)
    if r.returncode != 0:
        skip(f"the pinned {SRC['npm']} tarball is ABSENT: {r.stderr.strip()}")
    return r.stdout.strip()


def test_fetch_converts_into_a_fresh_cache_and_checks_both_pins(tmp_path):
    """A fresh cache (the tarball seeded: no network): fetch extracts the npm file,
    checks it, converts it and checks the result against the pin; a wrong pin is
    refused with both hashes and installs nothing."""
    if not os.access(FACEREC, os.X_OK):
        skip(f"{FACEREC} is ABSENT: build the project (scripts/test.sh does)")
    import shutil
    tarball = npm_tarball()
    entry = ENTRY["fr_detect_640"]
    assert entry["source"]["convert"]["tool"] == "ultraface_resize"
    assert entry["source"]["path_sha256"] == ENTRY["fr_detect"]["sha256"]
    for name, pin in (("good", entry["sha256"]), ("bad", "0" * 64)):
        cache = tmp_path / name
        os.makedirs(cache / "npm")
        shutil.copy(tarball, cache / "npm" / os.path.basename(tarball))
        manifest = json.loads(json.dumps(MANIFEST))
        for m in manifest["models"]:
            if m["id"] == "fr_detect_640":
                m["sha256"] = pin
        mp = tmp_path / f"{name}.json"
        mp.write_text(json.dumps(manifest))
        r = subprocess.run([FACEREC, "models", "fetch", "fr_detect_640", "--manifest", str(mp)],
                           env=dict(os.environ, FACEREC_CACHE=str(cache)), capture_output=True, text=True)
        out = cache / "models" / "fr_detect_640.onnx"
        leftovers = [f for f in os.listdir(cache / "models") if ".part" in f or f.endswith(".tmp")]
        assert not leftovers, leftovers
        if name == "good":
            assert r.returncode == 0, r.stderr
            assert sha256(out.read_bytes()) == entry["sha256"]
        else:
            assert r.returncode != 0
            assert "converted model has sha256 " + entry["sha256"] in r.stderr, r.stderr
            assert not out.exists()


def test_the_fetched_variant_finds_the_faces_of_a_real_photo(tmp_path):
    """`facerec models fetch` converts the npm file and pins it; then the variant
    finds every face SCRFD-2.5g finds on a real group photo (each at IoU >= 0.5),
    through `facerec identify` (boxes of every face, against a one-person gallery)."""
    if not os.access(FACEREC, os.X_OK):
        skip(f"{FACEREC} is ABSENT: build the project (scripts/test.sh does)")
    photo = os.path.join(SHARED, "data", "crowd", "insightface_t1.jpg")
    person = os.path.join(SHARED, "data", "celeb5", "train", "Madonna")
    if not os.path.exists(photo) or not os.path.isdir(person):
        skip(f"../shared is ABSENT ({photo}; set FACEREC_SHARED)")
    if not os.path.exists(os.path.join(SHARED, "models", "scrfd_2.5g_kps.onnx")):
        skip("../shared/models/scrfd_2.5g_kps.onnx is ABSENT")
    ids = [m["id"] for m in MANIFEST["models"] if m.get("source", {}).get("convert", {}).get("tool") ==
           "ultraface_resize"]
    assert ids, "no manifest entry converted by ultraface_resize"
    for id_ in ids:
        r = subprocess.run([FACEREC, "models", "fetch", id_], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    gallery = tmp_path / "g" / "Madonna"
    os.makedirs(gallery)
    first = sorted(os.listdir(person))[0]
    (gallery / first).write_bytes(open(os.path.join(person, first), "rb").read())
    db = str(tmp_path / "g.db")
    r = subprocess.run([FACEREC, "enroll", str(tmp_path / "g"), "--db", db], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def detect(detector):
        r = subprocess.run([FACEREC, "identify", photo, "--db", db, "--detector", detector, "--json"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return [f["box"] for f in json.loads(r.stdout.splitlines()[0])["faces"]]

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    truth = detect("scrfd_2.5g")
    assert len(truth) >= 5
    for id_ in ids:
        found = detect(id_)
        for t in truth:
            assert max((iou(t, f) for f in found), default=0) >= 0.5, (id_, t, found)
        assert len(found) <= len(truth) + 2, (id_, found)
