"""Export parity: the C++ engine (ONNX Runtime) and PyTorch give the same embeddings.

The trained AT&T model is exported with its manifest entry into a copy of the
manifest; held-out faces are written as lossless PNG crops of the model's
input size, so both sides see the same BGR pixels.
"""
import json
import os

import numpy as np
import torch

from conftest import ATT_INPUT, ROOT, run_facerec
from training.data import to_tensor, write_png
from training.export_onnx import export_checkpoint, load_checkpoint_backbone


def cli_embeddings(manifest, model_id, folder):
    out = run_facerec("embed", folder, "--aligned", "--json", "--manifest", manifest, "--embedder", model_id)
    rows = [json.loads(line) for line in out.splitlines()]
    assert all("error" not in r for r in rows), rows
    return {os.path.basename(r["image"]): r for r in rows}


def test_exported_model_matches_pytorch_in_the_cpp_engine(att_run, att_heldout, tmp_path):
    out, _ = att_run
    onnx_path = str(tmp_path / "att_tiny.onnx")
    manifest = str(tmp_path / "manifest.json")
    entry = export_checkpoint(os.path.join(out, "checkpoint.pth"), onnx_path, "att_tiny", append_to=manifest)
    assert entry["quality"] == "magnitude"
    assert entry["input"]["channels"] == "BGR" and entry["input"]["width"] == ATT_INPUT
    # The repository's own entries are kept, so the default detector still resolves.
    ids = [m["id"] for m in json.load(open(manifest))["models"]]
    assert "att_tiny" in ids and "fr_detect" in ids
    with open(os.path.join(ROOT, "models", "manifest.json")) as f:
        assert "att_tiny" not in f.read()  # the repository's manifest is untouched

    _, _, crops = att_heldout
    faces = tmp_path / "faces"
    faces.mkdir()
    picks = list(range(0, len(crops), 7))  # 15 faces, 10 people
    for i in picks:
        write_png(str(faces / f"{i:03d}.png"), crops[i])
    got = cli_embeddings(manifest, "att_tiny", str(faces))
    assert len(got) == len(picks)

    backbone, ck = load_checkpoint_backbone(os.path.join(out, "checkpoint.pth"))
    with torch.no_grad():
        ref = backbone(torch.stack([to_tensor(crops[i], ck["norm"]) for i in picks])).numpy()
    for row, i in zip(ref, picks):
        r = got[f"{i:03d}.png"]
        unit = np.asarray(r["embedding"])
        cos = float(unit @ row / np.linalg.norm(row))
        assert cos >= 0.9999, (i, cos)
        assert abs(r["norm"] - np.linalg.norm(row)) <= 1e-3 * np.linalg.norm(row)
        # quality: magnitude -> the engine reports the raw norm as quality.
        assert r["quality"] == r["norm"]


def test_enroll_min_quality_refuses_low_norm_faces_with_the_reason(att_run, att_heldout, tmp_path):
    """With quality: magnitude, --min-quality compares against the raw norm."""
    out, _ = att_run
    onnx_path, manifest = str(tmp_path / "m.onnx"), str(tmp_path / "manifest.json")
    export_checkpoint(os.path.join(out, "checkpoint.pth"), onnx_path, "att_tiny", append_to=manifest)
    _, labels, crops = att_heldout
    people = tmp_path / "people"
    for i in range(0, 40):  # the first 4 held-out people, 10 faces each
        d = people / f"person{labels[i]}"
        d.mkdir(parents=True, exist_ok=True)
        write_png(str(d / f"{i:03d}.png"), crops[i])
    norms = sorted(r["norm"] for r in cli_embeddings(manifest, "att_tiny", str(people)).values())
    cut = norms[len(norms) // 2]  # the median: about half must be refused
    # AT&T photos resized to 32x32, not ArcFace-aligned: the face check is off.
    out, err = run_facerec("enroll", str(people), "--aligned", "--no-face-check", "--min-quality", repr(cut), "--db",
                           str(tmp_path / "g.db"), "--manifest", manifest, "--embedder", "att_tiny", with_stderr=True)
    text = out + err
    # One "skip <file>: face quality Q is below --min-quality C" line per refused face.
    refused = [line for line in text.splitlines() if line.lstrip().startswith("skip") and "below --min-quality" in line]
    assert len(refused) == sum(n < cut for n in norms), text
    assert 10 <= len(refused) <= 30
    assert "face quality" in refused[0]
