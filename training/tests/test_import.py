"""Round trip of the MagFace checkpoint layout: our iresnet18 saved exactly as
MagFace's trainer saves (DataParallel `module.features.*` + `module.fc.weight`
under "state_dict"), imported to ONNX, then run by the C++ engine on real faces
with MagFace's input convention (BGR, [0, 1])."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import SHARED, run_facerec
from training.backbones import build_backbone, infer_iresnet_depth
from training.data import read_bgr, write_png
from training.import_magface import MAGFACE_NORM, import_checkpoint, load_magface_backbone


def magface_layout_checkpoint(path, name="iresnet18", classes=7):
    torch.manual_seed(1)
    net = build_backbone(name)
    # Non-trivial BN statistics, so a BN loaded wrongly (or left at defaults) shows.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    sd = {"module.features." + k: v for k, v in net.state_dict().items()}
    sd["module.fc.weight"] = torch.randn(512, classes)  # MagLinear: D x classes
    torch.save({"epoch": 25, "arch": name, "state_dict": sd, "optimizer": {}}, path)
    return net.eval()


def test_depth_comes_from_the_keys_not_the_name():
    # iresnet100 must not load as iresnet50 (the original design's mistake).
    sd = {k: None for k in build_backbone("iresnet100").state_dict()}
    assert infer_iresnet_depth(sd) == "iresnet100"
    sd = {k: None for k in build_backbone("iresnet50").state_dict()}
    assert infer_iresnet_depth(sd) == "iresnet50"


def test_missing_tensor_fails_loudly(tmp_path):
    path = str(tmp_path / "magface_iresnet18_broken.pth")
    magface_layout_checkpoint(path)
    ck = torch.load(path)
    del ck["state_dict"]["module.features.layer2.0.bn3.running_var"]
    torch.save(ck, path)
    with pytest.raises(RuntimeError, match="running_var"):
        load_magface_backbone(path)


def test_import_round_trip_in_the_cpp_engine(tmp_path):
    lfw = os.path.join(SHARED, "data", "lfw", "images")
    if not os.path.isdir(lfw):
        pytest.skip(f"!!! LFW ABSENT at {lfw}: set FACEREC_SHARED; this real-data test is SKIPPED !!!")
    pth = str(tmp_path / "magface_iresnet18_roundtrip.pth")
    original = magface_layout_checkpoint(pth)
    loaded, name = load_magface_backbone(pth)
    assert name == "iresnet18"
    for (k, a), (k2, b) in zip(original.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k

    onnx_path = str(tmp_path / "magface_r18.onnx")
    manifest = str(tmp_path / "manifest.json")
    entry, _ = import_checkpoint(pth, onnx_path, "magface_r18_test", append_to=manifest)
    assert entry["input"]["channels"] == "BGR" and entry["input"]["std"] == [255.0] * 3
    assert entry["input"]["mean"] == [0.0] * 3 and entry["quality"] == "magnitude"

    # Real colour faces (so a BGR/RGB mix-up shows): the central 112x112 of
    # LFW's 250x250 deep-funneled photos, where the face sits, as lossless PNG.
    people = sorted(os.listdir(lfw))[:6]
    faces = tmp_path / "faces"
    faces.mkdir()
    crops = []
    for j, person in enumerate(people):
        first = sorted(os.listdir(os.path.join(lfw, person)))[0]
        crops.append(np.ascontiguousarray(read_bgr(os.path.join(lfw, person, first))[69:181, 69:181]))
        write_png(str(faces / f"{j}.png"), crops[-1])
    out = run_facerec("embed", str(faces), "--aligned", "--json", "--manifest", manifest,
                      "--embedder", "magface_r18_test")
    got = {os.path.basename(json.loads(line)["image"]): json.loads(line) for line in out.splitlines()}
    # MagFace's convention: BGR, pixel / 255, no mean.
    x = torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1).float() / 255.0 for c in crops])
    with torch.no_grad():
        ref = original(x).numpy()
    assert len(got) == len(crops)
    for j, row in enumerate(ref):
        r = got[f"{j}.png"]
        cos = float(np.asarray(r["embedding"]) @ row / np.linalg.norm(row))
        assert cos >= 0.9999, (j, cos)
        assert r["norm"] == pytest.approx(float(np.linalg.norm(row)), rel=1e-3)
    # RGB instead of BGR would be a different input: make sure the test could tell.
    with torch.no_grad():
        rgb = original(x.flip(1)).numpy()
    unit0 = np.asarray(got["0.png"]["embedding"])
    assert float(unit0 @ rgb[0] / np.linalg.norm(rgb[0])) < 0.999
