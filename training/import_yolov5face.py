"""Import a YOLOv5-face checkpoint (deepcam-cn/yolov5-face's yolov5s-face.pt and
siblings) to ONNX, in the raw-heads layout facerec's `yolov5face` family decodes.

  /usr/bin/python3 -m training.import_yolov5face yolov5s-face.pt out/my_yolov5s.onnx \
      --id my_yolov5s [--append-to my_manifest.json | --append-to-local manifest.local.json]

(`facerec models import yolov5face yolov5s-face.pt --id my_yolov5s` runs this.)

The checkpoint is a pickle of the whole model ({'model': Model, 'epoch': ...}).
It is unpickled by training/safe_unpickle.py: the original code base's classes
(models.yolo.Model / Detect, models.common.Conv, Focus, C3, SPP, StemBlock,
ShuffleV2Block, ...) are mapped to facerec's own definitions in
training/yolov5face.py, the torch.nn layers and tensors to torch's, and any
other global is refused before anything runs. The model is then checked
(every module of an allowed type, no instance overriding `forward` or
carrying hooks, a
3-level Detect with 3 anchors x 16 values per cell, yolov5-face's anchors,
since the C++ decoder uses those), cast to float32 (released checkpoints are
float16) and exported: input `data` [1,3,S,S] (RGB, pixel/255, letterbox with
114), outputs `stride_8/16/32` [1,3,S/s,S/s,16] before the sigmoid, exactly
as the manifest's yolov5n-0.5-face.

Exit status: see training/import_cli.py (4: refused, unsafe global or not a
YOLOv5-face model this importer covers).
"""
import argparse
import json
import os
import sys

# yolov5-face's anchors (w, h in input pixels) per level; src/detect/yolov5face.cc's kAnchors.
FACE_ANCHORS = (((4, 5), (8, 10), (13, 16)),
                ((23, 29), (43, 55), (73, 105)),
                ((146, 217), (231, 300), (335, 433)))
STRIDES = (8, 16, 32)
ROW = 16  # 4 box + 1 obj + 10 landmarks + 1 class
INPUT_NORM = {"name": "data", "channels": "RGB", "mean": [0, 0, 0], "std": [255, 255, 255], "resize": "letterbox",
              "pad_value": 114}


class NotSupportedError(ValueError):
    """A checkpoint that loaded safely but is not a model facerec can decode."""


def allowed_globals():
    from training.safe_unpickle import TENSOR_GLOBALS
    from training.yolov5face import ORIGINAL_CLASSES, TORCH_NN_CLASSES
    return {**TENSOR_GLOBALS, **ORIGINAL_CLASSES, **TORCH_NN_CLASSES}


ALLOWED_DESC = ("a YOLOv5-face checkpoint (the classes models.yolo.Model/Detect and models.common."
                "Conv/Focus/StemBlock/ShuffleV2Block/Bottleneck/C3/SPP/SPPF/Concat, torch.nn layers, tensors)")


def load_model(path):
    """The checkpoint's model as training/yolov5face.py modules, float32, eval
    mode, validated. Raises UnsafeCheckpointError or NotSupportedError."""
    import torch
    from training.safe_unpickle import load_checkpoint
    from training import yolov5face as y5

    ck = load_checkpoint(path, allowed_globals(), ALLOWED_DESC)
    model = ck
    if isinstance(ck, dict):
        # yolov5-face's train.py saves {'model': ema.ema, ...}; later yolov5
        # code adds 'ema', which attempt_load prefers when present.
        model = ck.get("ema") if ck.get("ema") is not None else ck.get("model")
    if not isinstance(model, y5.Model):
        raise NotSupportedError(f"{path}: expected a models.yolo.Model (or a dict holding one under 'model'), "
                                f"found {type(model).__name__}")
    allowed_types = tuple(c for c in allowed_globals().values() if isinstance(c, type) and issubclass(c, torch.nn.Module))
    layers = getattr(model, "model", None)
    save = getattr(model, "save", None)
    if not isinstance(layers, torch.nn.Sequential) or len(layers) < 2:
        raise NotSupportedError(f"{path}: the Model has no layer list ('model')")
    if not isinstance(save, (list, tuple)) or not all(isinstance(s, int) for s in save):
        raise NotSupportedError(f"{path}: the Model has no valid 'save' list")
    for m in model.modules():
        if not isinstance(m, allowed_types):
            raise NotSupportedError(f"{path}: unexpected module type {type(m).__name__}")
        if any(getattr(m, h, None) for h in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")):
            raise NotSupportedError(f"{path}: a {type(m).__name__} carries hooks; a training checkpoint has none")
        if "forward" in vars(m):
            raise NotSupportedError(f"{path}: a {type(m).__name__} overrides forward (a fused or patched model); "
                                    "import the unfused training checkpoint")
        if isinstance(m, torch.nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
            m.recompute_scale_factor = None  # pickled by torch < 1.11
    for idx, layer in enumerate(layers):
        f = getattr(layer, "f", None)
        if getattr(layer, "i", None) != idx:
            raise NotSupportedError(f"{path}: layer {idx} has index {getattr(layer, 'i', None)!r}")
        refs = [f] if isinstance(f, int) else f
        if not isinstance(refs, (list, tuple)) or not all(isinstance(r, int) and -1 <= r < idx for r in refs):
            raise NotSupportedError(f"{path}: layer {idx} reads from {f!r}")
    det = layers[-1]
    if not isinstance(det, y5.Detect):
        raise NotSupportedError(f"{path}: the last layer is {type(det).__name__}, not Detect")
    if (det.nl, det.na, det.no) != (3, 3, ROW) or len(det.m) != 3:
        raise NotSupportedError(
            f"{path}: Detect has {det.nl} levels x {det.na} anchors x {det.no} values; facerec's yolov5face decoder "
            f"takes 3 levels (strides 8/16/32) x 3 anchors x {ROW} (box, obj, 5 landmarks, 1 class): P6 models "
            "(4 levels) and multi-class models are not covered")
    got = det.anchor_grid.float().reshape(3, 3, 2)
    want = torch.tensor(FACE_ANCHORS, dtype=torch.float32)
    if not torch.allclose(got, want, atol=1e-3):
        raise NotSupportedError(f"{path}: its anchors {got.tolist()} differ from yolov5-face's {want.tolist()}, "
                                "which facerec's decoder assumes")
    model = model.float().eval()
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, 128, 128))
    shapes = [tuple(o.shape) for o in outs]
    if shapes != [(1, 3, 128 // s, 128 // s, ROW) for s in STRIDES]:
        raise NotSupportedError(f"{path}: a 128x128 input gives heads {shapes}, not strides 8/16/32")
    return model, ck


def describe(model):
    """e.g. 'StemBlock+ShuffleV2Block backbone, width 0.5, depth 1.0, 0.45 M parameters'."""
    from training import yolov5face as y5
    first = type(model.model[0]).__name__
    shuffle = any(isinstance(m, y5.ShuffleV2Block) for m in model.modules())
    kind = f"{first}+ShuffleV2Block" if shuffle else f"{first}+Conv/C3/SPP"
    yaml = getattr(model, "yaml", None)
    mult = ""
    if isinstance(yaml, dict) and "width_multiple" in yaml:
        mult = f", width {yaml['width_multiple']}, depth {yaml.get('depth_multiple')}"
    params = sum(p.numel() for p in model.parameters())
    return f"{kind} backbone{mult}, {params / 1e6:.2f} M parameters"


def export(model, onnx_path, size=640, opset=12):
    import torch
    import onnx
    os.makedirs(os.path.dirname(os.path.abspath(onnx_path)), exist_ok=True)
    tmp = onnx_path + ".part"
    names = [f"stride_{s}" for s in STRIDES]
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 3, size, size), tmp, input_names=["data"], output_names=names,
                          opset_version=opset, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(tmp))
    os.replace(tmp, onnx_path)


def manifest_entry(model_id, onnx_path, size, checkpoint, description, licence):
    from training.export_onnx import sha256_file
    return {
        "id": model_id, "task": "detector", "family": "yolov5face",
        "source": {"file": os.path.abspath(onnx_path)},
        "sha256": sha256_file(onnx_path),
        "licence": licence,
        "input": {**INPUT_NORM, "width": size, "height": size},
        "outputs": [{"name": f"stride_{s}", "dims": [1, 3, size // s, size // s, ROW]} for s in STRIDES],
        "comment": f"imported from {os.path.basename(checkpoint)}: {description}",
    }


def import_checkpoint(checkpoint, onnx_path, model_id, append_to=None, local=False, size=640,
                      licence="that of the checkpoint's weights (deepcam-cn/yolov5-face releases: GPL-3.0)"):
    from training.export_onnx import append_to_manifest
    if size % 32:
        raise ValueError("--size must be a multiple of 32")
    model, _ = load_model(checkpoint)
    export(model, onnx_path, size)
    entry = manifest_entry(model_id, onnx_path, size, checkpoint, describe(model), licence)
    if append_to:
        append_to_manifest(entry, append_to, base_manifest=None, start_empty=local)
    return entry, model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from training.import_cli import add_import_arguments, manifest_destination, run_cli
    add_import_arguments(p, "yolov5*-face.pt")
    p.add_argument("--size", type=int, default=640, help="square input size (multiple of 32)")
    a = p.parse_args(argv)

    def body():
        dest, local = manifest_destination(a)
        entry, _ = import_checkpoint(a.checkpoint, a.onnx, a.id, dest, local=local, size=a.size)
        print(json.dumps(entry, indent=1))

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
