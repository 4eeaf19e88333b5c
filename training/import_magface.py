"""Import a published MagFace checkpoint (magface_iresnet{18,50,100}_*.pth) to ONNX.

  /usr/bin/python3 -m training.import_magface magface_iresnet100_MS1MV2_dp.pth out/magface_r100.onnx \
      --id magface_r100 --append-to my_manifest.json

MagFace's checkpoints hold {"state_dict": ...} whose keys are
`module.features.<iresnet param>` (the backbone, under DataParallel) and
`module.fc.weight` (the MagLinear head, unused at inference). The depth is
read from the layer{1..4} block counts, not the file name. MagFace's networks
take BGR pixels scaled to [0, 1] (cv2.imread + ToTensor, mean 0, std 1), i.e.
mean 0 and std 255 on 0..255 pixels in the manifest.

The file is unpickled by training/safe_unpickle.py: only tensors, state
dicts and plain values are resolved, and any other global (a class, a
callable) is refused before anything runs. `facerec models import magface
<pth> --id X` runs this module.
"""
import argparse
import json
import os
import sys

import torch

from training.backbones import build_backbone, infer_iresnet_depth
from training.export_onnx import append_to_manifest, export_backbone, manifest_entry

MAGFACE_NORM = {"channels": "BGR", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]}
PREFIXES = ("module.features.", "features.module.", "features.", "module.")


def strip_prefix(state_dict):
    """Backbone tensors only, with MagFace's wrapper prefixes removed."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith(("module.fc.", "fc.weight")) and v.dim() == 2 and k.count(".") <= 2 and "features" not in k:
            continue  # the MagLinear head (D x classes), not the backbone's fc
        for p in PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
                break
        out[k] = v
    return out


def load_magface_backbone(path):
    """(iresnet with the checkpoint's weights, its name)."""
    from training.safe_unpickle import TENSOR_GLOBALS, load_checkpoint
    ck = load_checkpoint(path, TENSOR_GLOBALS, "a MagFace checkpoint (state dicts of tensors)")
    sd = ck.get("state_dict", ck) if isinstance(ck, dict) else ck
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path}: no state dict of tensors (MagFace's hold 'state_dict': module.features.*)")
    sd = strip_prefix(sd)
    if "fc.weight" not in sd or "bn2.weight" not in sd:
        raise ValueError(f"{path}: not an iresnet backbone (no fc.weight / bn2.weight after the MagFace prefixes)")
    name = infer_iresnet_depth(sd)
    side = int(round((sd["fc.weight"].shape[1] / sd["bn2.weight"].shape[0]) ** 0.5))
    backbone = build_backbone(name, sd["fc.weight"].shape[0], input_size=16 * side)
    # strict: a renamed or missing tensor must fail here, not give a silently random layer.
    backbone.load_state_dict(sd, strict=True)
    return backbone.eval(), name


def load_any_backbone(path):
    """A backbone state dict from our checkpoint or a MagFace one (for fine-tuning)."""
    ck = torch.load(path, map_location="cpu")
    if isinstance(ck, dict) and "backbone" in ck and "state_dict" in ck:
        return ck["state_dict"]
    return strip_prefix(ck.get("state_dict", ck))


def import_checkpoint(pth, onnx_path, model_id, append_to=None,
                      licence="MagFace (Apache-2.0 code; weights trained on MS1MV2: research use)", local=False):
    backbone, name = load_magface_backbone(pth)
    size = backbone.input_size
    export_backbone(backbone, onnx_path, size)
    entry = manifest_entry(model_id, onnx_path, size, MAGFACE_NORM, backbone.features.num_features, licence,
                           note=f"MagFace {name} imported from {os.path.basename(pth)}")
    with open(os.path.splitext(onnx_path)[0] + ".manifest.json", "w") as f:
        json.dump(entry, f, indent=1)
        f.write("\n")
    if append_to:
        append_to_manifest(entry, append_to, start_empty=local)
    return entry, backbone


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from training.import_cli import add_import_arguments, manifest_destination, run_cli
    add_import_arguments(p, "magface_iresnet*.pth")
    a = p.parse_args(argv)

    def body():
        dest, local = manifest_destination(a)
        entry, _ = import_checkpoint(a.checkpoint, a.onnx, a.id, dest, local=local)
        print(json.dumps(entry, indent=1))

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
