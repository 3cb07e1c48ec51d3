"""PyTorch CPU timings for the task models' train steps, mirroring crate/model/.

    python3 tests/reference/train_step.py [--model NAME ...] [--batch 8] [--size 256] [--steps 5]
        [--freeze-backbone]

prints one JSON line per model in the shape of `lens2logit bench train-step` (ms_per_step: median).

The models follow ours layer for layer: the small ResNet (3x3 stem, one BasicBlock per stage at 16,
32, 64 channels), the small U-Net (16, 32, 64), torchvision's ResNet-18 topology. Requires torch
from PyPI.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample else x))


class ResNet(nn.Module):
    def __init__(self, classes, stem_k, stem_stride, max_pool, widths, blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], stem_k, stem_stride, stem_k // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.max_pool = max_pool
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        if self.max_pool:
            y = F.max_pool2d(y, 3, 2, 1)
        return self.fc(self.layers(y).mean((2, 3)))


def double(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.enc2, self.bottleneck = double(3, 16), double(16, 32), double(32, 64)
        self.dec2, self.dec1 = double(96, 32), double(48, 16)
        self.head = nn.Conv2d(16, 1, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottleneck(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(b, size=e2.shape[2:]), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[2:]), e1], 1))
        return self.head(d1)


def dice(logits, mask):
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * mask).sum() + 1) / (p.sum() + mask.sum() + 1)


def median_time(step, repeats):
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def train_step(model, x, loss_fn):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        opt.zero_grad()
        loss_fn(model(x)).backward()
        opt.step()
    return step


def model_and_loss(name, batch, size):
    """The model `lens2logit bench train-step --model NAME` times, a batch and its loss."""
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size)
    if name.startswith("unet"):
        mask = (torch.rand(batch, 1, size, size) > 0.5).float()
        return UNet(), x, lambda o: dice(o, mask)
    y = torch.arange(batch) % 4
    model = {
        "resnet_small": lambda: ResNet(4, 3, 1, False, [16, 32, 64], 1),
        "resnet18": lambda: ResNet(4, 7, 2, True, [64, 128, 256, 512], 2),
    }[name]()
    return model, x, lambda o: F.cross_entropy(o, y)


# The backbone's top-level modules, as `ModelKind::is_backbone` names them.
BACKBONE = {"resnet_small": ("conv1", "bn1", "layers"), "resnet18": ("conv1", "bn1", "layers"),
            "unet_small": ("enc1", "enc2", "bottleneck")}


def freeze_backbone(model, name):
    """Fine-tuning with the backbone frozen, as `bench train-step --freeze-backbone` runs it: its
    weights take no gradient and its batch norms normalise with their running statistics."""
    for child, module in model.named_children():
        if child in BACKBONE[name]:
            module.requires_grad_(False)
            module.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", help="resnet_small, unet_small, resnet18 (repeatable)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--freeze-backbone", action="store_true")
    args = parser.parse_args()
    for name in args.model or ["resnet_small", "unet_small", "resnet18"]:
        model, x, loss = model_and_loss(name, args.batch, args.size)
        if args.freeze_backbone:
            freeze_backbone(model, name)
        seconds = median_time(train_step(model, x, loss), args.steps)
        print(json.dumps({"model": name, "backend": "pytorch_cpu", "batch": args.batch, "size": args.size,
                          "ms_per_step": seconds * 1000, "threads": torch.get_num_threads(),
                          "frozen_backbone": args.freeze_backbone}))


if __name__ == "__main__":
    main()
