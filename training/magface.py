"""MagFace head and loss (Meng et al., CVPR 2021), following the paper and its code.

MagLinear is a cosine classifier over L2-normalised weights whose additive
angular margin m(a) grows linearly with the feature magnitude a = ||f||:
    m(a) = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m,  a clamped to [l_a, u_a]
so a confident (large-norm) face must beat a larger margin. MagLoss adds the
regulariser g(a) = a / u_a^2 + 1 / a, weighted by lambda_g, which rewards
large norms for easy samples; together they make the magnitude a quality score.

ArcFace (a fixed margin, no regulariser) is the comparison option: pass
margin="arcface" to build_head().

Shapes: features N x D (raw, unnormalised); weight D x C (MagFace's layout, so
its checkpoints' `module.fc.weight` loads as is); targets N (class indices).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# The paper's and code's defaults.
L_A, U_A = 10.0, 110.0
L_M, U_M = 0.45, 0.8
SCALE = 64.0
LAMBDA_G = 35.0
ARCFACE_MARGIN = 0.5


def linear_margin(a, l_a=L_A, u_a=U_A, l_m=L_M, u_m=U_M):
    """m(a), linear from l_m at a = l_a to u_m at a = u_a (a already clamped)."""
    return (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m


class MagLinear(nn.Module):
    """Returns (s*cos(theta), s*cos(theta + m)) for every class, and the clamped norm.

    easy_margin=True (MagFace's default) applies the margin only where
    cos(theta) > 0. Without it, where theta + m would pass pi the target logit
    falls back to cos(theta) - sin(pi - m) * m, as in MagFace's code, so the
    target logit stays monotonic in theta.

    margin_fn: a -> m(a); None gives MagFace's linear margin with l_m, u_m.
    A constant margin_fn gives ArcFace (see ArcFaceLinear)."""

    def __init__(self, in_features, out_features, scale=SCALE, easy_margin=True,
                 l_a=L_A, u_a=U_A, l_m=L_M, u_m=U_M, margin_fn=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        # MagFace's init: uniform columns renormalised to unit length.
        self.weight.data.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)
        self.scale, self.easy_margin = scale, easy_margin
        self.l_a, self.u_a, self.l_m, self.u_m = l_a, u_a, l_m, u_m
        self.margin_fn = margin_fn or (lambda a: linear_margin(a, l_a, u_a, l_m, u_m))

    def forward(self, x):
        x_norm = torch.norm(x, dim=1, keepdim=True).clamp(self.l_a, self.u_a)
        margin = self.margin_fn(x_norm)
        if not torch.is_tensor(margin):
            margin = torch.full_like(x_norm, float(margin))
        cos_m, sin_m = torch.cos(margin), torch.sin(margin)
        cos_theta = torch.mm(F.normalize(x), F.normalize(self.weight, dim=0)).clamp(-1, 1)
        sin_theta = torch.sqrt((1.0 - cos_theta.pow(2)).clamp_min(0.0))
        cos_theta_m = cos_theta * cos_m - sin_theta * sin_m
        if self.easy_margin:
            cos_theta_m = torch.where(cos_theta > 0, cos_theta_m, cos_theta)
        else:
            mm = torch.sin(math.pi - margin) * margin
            threshold = torch.cos(math.pi - margin)
            cos_theta_m = torch.where(cos_theta > threshold, cos_theta_m, cos_theta - mm)
        return (self.scale * cos_theta, self.scale * cos_theta_m), x_norm


class ArcFaceLinear(MagLinear):
    """ArcFace: the same classifier with a constant margin (0.5 rad)."""

    def __init__(self, in_features, out_features, scale=SCALE, easy_margin=False, margin=ARCFACE_MARGIN):
        super().__init__(in_features, out_features, scale, easy_margin, margin_fn=lambda a: margin)
        self.margin = margin


class MagLoss(nn.Module):
    """Cross-entropy on the margin logits for the target class and the plain
    logits elsewhere, plus lambda_g * mean(g(a)).

    forward returns (total, classification loss, g loss); lambda_g = 0 gives
    plain ArcFace training."""

    def __init__(self, l_a=L_A, u_a=U_A, lambda_g=LAMBDA_G):
        super().__init__()
        self.l_a, self.u_a, self.lambda_g = l_a, u_a, lambda_g

    def g(self, x_norm):
        return x_norm / (self.u_a ** 2) + 1.0 / x_norm

    def forward(self, logits, target, x_norm):
        cos_theta, cos_theta_m = logits
        one_hot = torch.zeros_like(cos_theta).scatter_(1, target.view(-1, 1), 1.0)
        output = one_hot * cos_theta_m + (1.0 - one_hot) * cos_theta
        loss_id = F.cross_entropy(output, target)
        loss_g = self.g(x_norm).mean()
        return loss_id + self.lambda_g * loss_g, loss_id, loss_g


def build_head(margin, in_features, num_classes, easy_margin=True):
    """margin: "magface" or "arcface". Returns (head, loss)."""
    if margin == "magface":
        return MagLinear(in_features, num_classes, easy_margin=easy_margin), MagLoss()
    if margin == "arcface":
        return ArcFaceLinear(in_features, num_classes, easy_margin=easy_margin), MagLoss(lambda_g=0.0)
    raise ValueError(f"unknown margin {margin!r}: magface or arcface")
