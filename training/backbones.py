"""Embedding backbones: iresnet18/34/50/100 (ArcFace/MagFace layout) and MobileFaceNet.

The iresnet layout, parameter names included, is insightface's and MagFace's
(`models/iresnet.py`): BN-Conv-BN-PReLU-Conv-BN residual blocks, then a
BN-Dropout-FC-BN head to 512 features. Keeping the names lets
import_magface.py load the published checkpoints without renaming layers.

The original design mapped iresnet100 to iresnet50 by mistake; here every
depth has its own block counts and build_backbone() refuses unknown names.

Input: N x 3 x S x S, S a multiple of 16 (112 for the ArcFace template). The
channel order and scaling are a property of the trained weights, recorded in
the checkpoint and the manifest entry, not of the network.
"""
import torch
from torch import nn

IRESNET_LAYERS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}
# Not a published model: one block per stage at a quarter of the width, for
# CPU tests and smoke runs on small sets (e.g. AT&T at 32x32).
TINY = {"iresnet_tiny": ((1, 1, 1, 1), 16)}
# MagFace/insightface use eps 1e-5 in every BatchNorm of iresnet.
_BN_EPS = 1e-5


def _conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=_BN_EPS)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=_BN_EPS)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=_BN_EPS)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    def __init__(self, layers, num_features=512, dropout=0.0, input_size=112, width=64):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size {input_size} is not a multiple of 16")
        self.input_size = input_size
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=_BN_EPS)
        self.prelu = nn.PReLU(width)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(2 * width, layers[1])
        self.layer3 = self._make_layer(4 * width, layers[2])
        self.layer4 = self._make_layer(8 * width, layers[3])
        self.bn2 = nn.BatchNorm2d(8 * width, eps=_BN_EPS)
        self.dropout = nn.Dropout(p=dropout)
        side = input_size // 16
        self.fc = nn.Linear(8 * width * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=_BN_EPS)
        # As in MagFace/insightface: the final BN only centres and shifts; a
        # learnt scale would let the network rescale the magnitude freely.
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes, blocks):
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(planes, eps=_BN_EPS),
        )
        layers = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


# --- MobileFaceNet (Chen et al. 2018), in insightface arcface_torch's layout --
class _ConvBlock(nn.Sequential):
    def __init__(self, cin, cout, k=1, s=1, p=0, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.PReLU(cout))
        super().__init__(*layers)


class _DepthWise(nn.Module):
    def __init__(self, cin, cout, residual, stride, groups):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            _ConvBlock(cin, groups),
            _ConvBlock(groups, groups, 3, stride, 1, groups=groups),
            _ConvBlock(groups, cout, act=False),
        )

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


def _residual(c, n, groups):
    return nn.Sequential(*[_DepthWise(c, c, True, 1, groups) for _ in range(n)])


class MobileFaceNet(nn.Module):
    """blocks=(1, 4, 6, 2), scale=2 is arcface_torch's "mbf"; scale=1 is a
    narrower net for quick CPU runs. GDC (a global depthwise conv over the
    final S/16 x S/16 map) -> linear -> BN gives the features."""

    def __init__(self, num_features=512, blocks=(1, 4, 6, 2), scale=2, input_size=112):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size {input_size} is not a multiple of 16")
        self.input_size = input_size
        c1, c2 = 64 * scale, 128 * scale
        self.body = nn.Sequential(
            _ConvBlock(3, c1, 3, 2, 1),
            _ConvBlock(c1, c1, 3, 1, 1, groups=c1) if blocks[0] == 1 else _residual(c1, blocks[0], 128),
            _DepthWise(c1, c1, False, 2, 128),
            _residual(c1, blocks[1], 128),
            _DepthWise(c1, c2, False, 2, 256),
            _residual(c2, blocks[2], 256),
            _DepthWise(c2, c2, False, 2, 512),
            _residual(c2, blocks[3], 512),
            _ConvBlock(c2, 512),
        )
        side = input_size // 16
        self.gdc = _ConvBlock(512, 512, side, 1, 0, groups=512, act=False)
        self.fc = nn.Linear(512, num_features, bias=False)
        self.features = nn.BatchNorm1d(num_features)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = torch.flatten(self.gdc(self.body(x)), 1)
        return self.features(self.fc(x))


BACKBONES = tuple(IRESNET_LAYERS) + tuple(TINY) + ("mobilefacenet", "mobilefacenet_s")


def build_backbone(name, num_features=512, input_size=112, dropout=0.0):
    """name: iresnet18|34|50|100, iresnet_tiny, mobilefacenet (scale 2), mobilefacenet_s (scale 1)."""
    if name in IRESNET_LAYERS:
        return IResNet(IRESNET_LAYERS[name], num_features, dropout, input_size)
    if name in TINY:
        layers, width = TINY[name]
        return IResNet(layers, num_features, dropout, input_size, width)
    if name == "mobilefacenet":
        return MobileFaceNet(num_features, scale=2, input_size=input_size)
    if name == "mobilefacenet_s":
        return MobileFaceNet(num_features, scale=1, input_size=input_size)
    raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")


def infer_iresnet_depth(state_dict, prefix=""):
    """The iresnet name whose block counts match a state dict's layer{1..4}.{j} keys."""
    counts = []
    for layer in range(1, 5):
        head = f"{prefix}layer{layer}."
        idx = {int(k[len(head):].split(".")[0]) for k in state_dict if k.startswith(head)}
        counts.append(max(idx) + 1 if idx else 0)
    for name, layers in IRESNET_LAYERS.items():
        if tuple(counts) == layers:
            return name
    raise ValueError(f"no iresnet has blocks {tuple(counts)} (known: {IRESNET_LAYERS})")
