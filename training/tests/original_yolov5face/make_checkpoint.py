#!/usr/bin/python3
"""Test-only: build a YOLOv5-face model with the original's classes and layouts,
save it the way the original's train.py + strip_optimizer do, and write
PyTorch's raw heads for a seeded input.

  make_checkpoint.py VARIANT OUT.pt [--half] [--size 640] [--ref DIR]
                     [--weights-from-onnx yolov5n-0.5-face.onnx] [--evil-class | --evil-reduce MARKER]

VARIANT: n-0.5, n, s (Focus), s-stem (the later StemBlock yolov5s.yaml), m.
Weights are random (seed 0; BatchNorm statistics randomised so activations
stay in range) unless --weights-from-onnx copies an export's folded weights in
(every BatchNorm then the identity plus the folded bias). With --ref, writes
DIR/input.raw (float32 [1,3,S,S], uniform 0..1, seed 1) and DIR/ref<k>.raw,
the raw heads of this model in float32 (after the --half rounding).
--evil-class adds a module of a class the importer does not know;
--evil-reduce adds an object whose unpickling would run os.system('touch MARKER').
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models.common  # noqa: E402
from models.yolo import Model  # noqa: E402

ANCHORS = [[4, 5, 8, 10, 13, 16], [23, 29, 43, 55, 73, 105], [146, 217, 231, 300, 335, 433]]


def shuffle_backbone(stem):
    return [[-1, 1, 'StemBlock', [stem, 3, 2]], [-1, 1, 'ShuffleV2Block', [128, 2]], [-1, 3, 'ShuffleV2Block', [128, 1]],
            [-1, 1, 'ShuffleV2Block', [256, 2]], [-1, 7, 'ShuffleV2Block', [256, 1]],
            [-1, 1, 'ShuffleV2Block', [512, 2]], [-1, 3, 'ShuffleV2Block', [512, 1]]]


SHUFFLE_HEAD = [[-1, 1, 'Conv', [128, 1, 1]], [-1, 1, 'nn.Upsample', [None, 2, 'nearest']], [[-1, 4], 1, 'Concat', [1]],
                [-1, 1, 'C3', [128, False]], [-1, 1, 'Conv', [128, 1, 1]], [-1, 1, 'nn.Upsample', [None, 2, 'nearest']],
                [[-1, 2], 1, 'Concat', [1]], [-1, 1, 'C3', [128, False]], [-1, 1, 'Conv', [128, 3, 2]],
                [[-1, 11], 1, 'Concat', [1]], [-1, 1, 'C3', [128, False]], [-1, 1, 'Conv', [128, 3, 2]],
                [[-1, 7], 1, 'Concat', [1]], [-1, 1, 'C3', [128, False]], [[14, 17, 20], 1, 'Detect', ['nc', 'anchors']]]


def csp_yaml(first, depth, width):
    """yolov5s/m-face: Focus (or StemBlock) + Conv/C3/SPP backbone, PAN head."""
    stem = [[-1, 1, 'Focus', [64, 3]], [-1, 1, 'Conv', [128, 3, 2]]] if first == 'Focus' else \
        [[-1, 1, 'StemBlock', [64, 3, 2]]]
    o = len(stem) - 1  # layer index offset against the Focus layout
    backbone = stem + [[-1, 3, 'C3', [128]], [-1, 1, 'Conv', [256, 3, 2]], [-1, 9, 'C3', [256]],
                       [-1, 1, 'Conv', [512, 3, 2]], [-1, 9, 'C3', [512]], [-1, 1, 'Conv', [1024, 3, 2]],
                       [-1, 1, 'SPP', [1024, [3, 5, 7]]], [-1, 3, 'C3', [1024, False]]]
    head = [[-1, 1, 'Conv', [512, 1, 1]], [-1, 1, 'nn.Upsample', [None, 2, 'nearest']], [[-1, 5 + o], 1, 'Concat', [1]],
            [-1, 3, 'C3', [512, False]], [-1, 1, 'Conv', [256, 1, 1]], [-1, 1, 'nn.Upsample', [None, 2, 'nearest']],
            [[-1, 3 + o], 1, 'Concat', [1]], [-1, 3, 'C3', [256, False]], [-1, 1, 'Conv', [256, 3, 2]],
            [[-1, 13 + o], 1, 'Concat', [1]], [-1, 3, 'C3', [512, False]], [-1, 1, 'Conv', [512, 3, 2]],
            [[-1, 9 + o], 1, 'Concat', [1]], [-1, 3, 'C3', [1024, False]],
            [[16 + o, 19 + o, 22 + o], 1, 'Detect', ['nc', 'anchors']]]
    return {'nc': 1, 'depth_multiple': depth, 'width_multiple': width, 'anchors': ANCHORS, 'backbone': backbone,
            'head': head}


def variant_yaml(v):
    if v in ('n', 'n-0.5'):
        return {'nc': 1, 'depth_multiple': 1.0, 'width_multiple': 1.0 if v == 'n' else 0.5, 'anchors': ANCHORS,
                'backbone': shuffle_backbone(32), 'head': SHUFFLE_HEAD}
    return {'s': lambda: csp_yaml('Focus', 0.33, 0.5), 's-stem': lambda: csp_yaml('StemBlock', 0.33, 0.5),
            'm': lambda: csp_yaml('Focus', 0.67, 0.75)}[v]()


def randomise(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def conv_bn_pairs(model):
    """{conv: its BatchNorm or None}, for every Conv2d."""
    pairs = {}
    for m in model.modules():
        if isinstance(m, models.common.Conv):
            pairs[m.conv] = m.bn
        elif isinstance(m, nn.Sequential):
            ms = list(m)
            for a, b in zip(ms, ms[1:] + [None]):
                if isinstance(a, nn.Conv2d):
                    pairs[a] = b if isinstance(b, nn.BatchNorm2d) else None
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m not in pairs:
            pairs[m] = None  # Detect's output convolutions (they have a bias)
    return pairs


def load_onnx_weights(model, path, size):
    """Copies an export's convolutions (BatchNorm folded in) into the model, in
    execution order, checking every shape, stride and group count."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    convs = [n for n in g.node if n.op_type == 'Conv']
    order = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: order.append(mod))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    if len(order) != len(convs):
        sys.exit(f'{path}: {len(convs)} convolutions, the model runs {len(order)}')
    pairs = conv_bn_pairs(model)
    with torch.no_grad():
        for mod, node in zip(order, convs):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            w = torch.from_numpy(inits[node.input[1]].copy())
            b = torch.from_numpy(inits[node.input[2]].copy())
            if (tuple(w.shape) != tuple(mod.weight.shape) or list(attrs.get('strides', [1, 1])) != list(mod.stride)
                    or attrs.get('group', 1) != mod.groups):
                sys.exit(f'{path}: conv {node.name} {tuple(w.shape)} does not fit {mod}')
            mod.weight.copy_(w)
            bn = pairs[mod]
            if bn is None:
                mod.bias.copy_(b)
            else:
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)


class EvilReduce:
    """Unpickling this runs os.system: what the importer must never do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('variant')
    ap.add_argument('out')
    ap.add_argument('--half', action='store_true')
    ap.add_argument('--size', type=int, default=640)
    ap.add_argument('--ref')
    ap.add_argument('--weights-from-onnx')
    ap.add_argument('--evil-class', action='store_true')
    ap.add_argument('--evil-reduce')
    a = ap.parse_args()
    torch.manual_seed(0)
    model = Model(variant_yaml(a.variant)).eval()
    if a.weights_from_onnx:
        load_onnx_weights(model, a.weights_from_onnx, a.size)
    else:
        randomise(model)
    model.hyp = {'lr0': 0.01, 'momentum': 0.937}
    model.gr = 1.0
    model.class_weights = torch.ones(1)
    if a.evil_class:
        # a module class the importer has no mapping for, under the original's path
        Evil = type('Evil', (nn.Module,), {'__module__': 'models.common', 'forward': lambda self, x: x})
        models.common.Evil = Evil
        model.model[1].add_module('extra', Evil())
    if a.half:
        model.half()  # strip_optimizer(): the released checkpoints are float16
        for p in model.parameters():
            p.requires_grad = False
    ckpt = {'epoch': -1, 'best_fitness': np.array([0.4]), 'training_results': None, 'model': model,
            'optimizer': None, 'wandb_id': None}
    if a.evil_reduce:
        ckpt['wandb_id'] = EvilReduce(a.evil_reduce)
    torch.save(ckpt, a.out)
    if a.ref:
        os.makedirs(a.ref, exist_ok=True)
        x = np.random.default_rng(1).uniform(0, 1, (1, 3, a.size, a.size)).astype(np.float32)
        x.tofile(os.path.join(a.ref, 'input.raw'))
        with torch.no_grad():
            heads = model.float()(torch.from_numpy(x))
        for k, h in enumerate(heads):
            h.numpy().astype(np.float32).tofile(os.path.join(a.ref, f'ref{k}.raw'))
        print('heads', [tuple(h.shape) for h in heads])


if __name__ == '__main__':
    main()
