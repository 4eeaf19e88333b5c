"""Export a trained backbone to ONNX (dynamic batch) plus its manifest entry.

  /usr/bin/python3 -m training.export_onnx runs/r50/checkpoint.pth runs/r50/r50.onnx \
      --id my_r50 [--append-to my_manifest.json]

The entry records what the C++ engine needs to feed the network exactly as in
training: input size, channel order and normalisation (value = (pixel - mean)
/ std with pixels 0..255 in that order), the output, the file's sha256 and
`"quality": "magnitude"`, so the raw feature norm is reported as quality.
`facerec --manifest my_manifest.json --embedder my_r50 ...` (or
FACEREC_MANIFEST=...) then runs it with no other step.
"""
import argparse
import hashlib
import json
import os

import torch

from training.backbones import build_backbone

INPUT_NAME, OUTPUT_NAME = "input", "embedding"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_backbone(backbone, onnx_path, input_size, opset=13):
    """Writes backbone (eval mode: BN uses running stats) as N x 3 x S x S -> N x D."""
    backbone = backbone.cpu().eval()
    dummy = torch.zeros(2, 3, input_size, input_size)
    os.makedirs(os.path.dirname(os.path.abspath(onnx_path)), exist_ok=True)
    tmp = onnx_path + ".part"
    with torch.no_grad():
        torch.onnx.export(backbone, dummy, tmp, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, do_constant_folding=True)
    import onnx
    onnx.checker.check_model(onnx.load(tmp))
    os.replace(tmp, onnx_path)
    return onnx_path


def manifest_entry(model_id, onnx_path, input_size, norm, embedding_size=512, licence="", note="",
                   quality_magnitude=True):
    entry = {
        "id": model_id, "task": "embedder", "family": "arcface",
        "source": {"file": os.path.abspath(onnx_path)},
        "sha256": sha256_file(onnx_path),
        "licence": licence,
        "input": {"name": INPUT_NAME, "width": input_size, "height": input_size, "channels": norm["channels"],
                  "mean": list(norm["mean"]), "std": list(norm["std"]), "resize": "stretch"},
        "outputs": [{"name": OUTPUT_NAME, "dims": [-1, embedding_size]}],
    }
    if quality_magnitude:
        entry["quality"] = "magnitude"
    if note:
        entry["comment"] = note
    return entry


def append_to_manifest(entry, manifest_path, base_manifest=None, start_empty=False):
    """Adds (or replaces, by id) entry in manifest_path. A missing file starts
    as a copy of base_manifest (default: the repository's models/manifest.json),
    so the detectors stay available, or with no models when start_empty (a
    local overlay that facerec merges into the default manifest)."""
    if not os.path.exists(manifest_path) and start_empty:
        os.makedirs(os.path.dirname(os.path.abspath(manifest_path)), exist_ok=True)
        doc = {"version": 1, "comment": "models imported on this machine (facerec models import); "
                                        "merged into the default manifest", "models": []}
    elif not os.path.exists(manifest_path):
        base = base_manifest or os.path.join(os.path.dirname(__file__), "..", "models", "manifest.json")
        with open(base) as f:
            doc = json.load(f)
    else:
        with open(manifest_path) as f:
            doc = json.load(f)
    doc["models"] = [m for m in doc["models"] if m.get("id") != entry["id"]] + [entry]
    tmp = manifest_path + ".part"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, manifest_path)


def load_checkpoint_backbone(ckpt_path):
    """(backbone with weights, checkpoint dict) from a training/train.py checkpoint."""
    ck = torch.load(ckpt_path, map_location="cpu")
    backbone = build_backbone(ck["backbone"], ck["embedding_size"], ck["input_size"])
    backbone.load_state_dict(ck["state_dict"])
    return backbone.eval(), ck


def export_checkpoint(ckpt_path, onnx_path, model_id, append_to=None, licence="trained locally"):
    backbone, ck = load_checkpoint_backbone(ckpt_path)
    export_backbone(backbone, onnx_path, ck["input_size"])
    entry = manifest_entry(model_id, onnx_path, ck["input_size"], ck["norm"], ck["embedding_size"], licence,
                           note=f"{ck['backbone']} trained with {ck['margin']} for {ck['epoch']} epochs "
                                f"on {len(ck['classes'])} people ({ck['args'].get('data')})")
    with open(os.path.splitext(onnx_path)[0] + ".manifest.json", "w") as f:
        json.dump(entry, f, indent=1)
        f.write("\n")
    if append_to:
        append_to_manifest(entry, append_to)
    return entry


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("onnx")
    p.add_argument("--id", required=True, help="manifest id of the model")
    p.add_argument("--append-to", help="manifest file to add the entry to (created from models/manifest.json if absent)")
    a = p.parse_args(argv)
    entry = export_checkpoint(a.checkpoint, a.onnx, a.id, a.append_to)
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
