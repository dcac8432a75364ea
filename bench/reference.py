"""The reference design written the straightforward way, as in a tutorial (the benchmark's yardstick).

Follows the seed tutorial the project started from (BasicBlock with a projection shortcut, TinyResNet
backbone with stem and layer1..layer4, FPN with lateral 1×1, nearest ×2 upsampling, 3×3 smoothing, P6 conv on P5). Plain
NCHW, default settings, no fusion, no channels_last: what a reader would write without tuning.
Its parameters are registered in the same order as resfpn's reference ``Config()``, so resfpn's
weights load into it one to one (``load_from``) and both give the same outputs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or cin != cout:
            self.skip_connection = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(cout),
            )
        else:
            self.skip_connection = nn.Identity()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.skip_connection(x)
        return self.relu(out)


class TinyResNetBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.layer1 = nn.Sequential(BasicBlock(64, 64, 1), BasicBlock(64, 64, 1))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128, 1))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256, 1))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512, 1))

    def forward(self, x):
        x = self.stem(x)
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"C2": c2, "C3": c3, "C4": c4, "C5": c5}


class FPN(nn.Module):
    def __init__(self, c2: int, c3: int, c4: int, c5: int, d: int = 256, make_p6: bool = True):
        super().__init__()
        self.lat2 = nn.Conv2d(c2, d, kernel_size=1)
        self.lat3 = nn.Conv2d(c3, d, kernel_size=1)
        self.lat4 = nn.Conv2d(c4, d, kernel_size=1)
        self.lat5 = nn.Conv2d(c5, d, kernel_size=1)
        self.smooth2 = nn.Conv2d(d, d, kernel_size=3, padding=1)
        self.smooth3 = nn.Conv2d(d, d, kernel_size=3, padding=1)
        self.smooth4 = nn.Conv2d(d, d, kernel_size=3, padding=1)
        self.smooth5 = nn.Conv2d(d, d, kernel_size=3, padding=1)
        self.make_p6 = make_p6
        self.p6 = nn.Conv2d(d, d, kernel_size=3, stride=2, padding=1) if make_p6 else None

    def forward(self, C):
        c2, c3, c4, c5 = C["C2"], C["C3"], C["C4"], C["C5"]
        m5 = self.lat5(c5)
        m4 = self.lat4(c4) + F.interpolate(m5, scale_factor=2.0, mode="nearest")
        m3 = self.lat3(c3) + F.interpolate(m4, scale_factor=2.0, mode="nearest")
        m2 = self.lat2(c2) + F.interpolate(m3, scale_factor=2.0, mode="nearest")
        out = {"P2": self.smooth2(m2), "P3": self.smooth3(m3), "P4": self.smooth4(m4), "P5": self.smooth5(m5)}
        if self.make_p6:
            out["P6"] = self.p6(out["P5"])
        return out


class ReferenceResFPN(nn.Module):
    """Backbone + FPN; returns C2..C5 and P2..P6 like resfpn's model."""

    def __init__(self):
        super().__init__()
        self.backbone = TinyResNetBackbone()
        self.fpn = FPN(64, 128, 256, 512, d=256, make_p6=True)

    def forward(self, x):
        c = self.backbone(x)
        return c | self.fpn(c)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_from(reference: nn.Module, other: nn.Module) -> None:
    """Copy ``other``'s state (parameters and BN buffers) into ``reference`` by position, checking shapes."""
    ours = [(k, v) for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")]
    theirs = [(k, v) for k, v in other.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(ours) != len(theirs):
        raise ValueError(f"state sizes differ: reference {len(ours)} tensors, other {len(theirs)}")
    with torch.no_grad():
        for (k, v), (k2, v2) in zip(ours, theirs):
            if v.shape != v2.shape:
                raise ValueError(f"{k} {tuple(v.shape)} vs {k2} {tuple(v2.shape)}")
            v.copy_(v2)
