"""Weights, inputs, eval-mode logits and one AdamW step of the real task models, from PyTorch.

    "$LENS2LOGIT_PYTHON" tests/reference/pretrained.py --out DIR          # every case below
    "$LENS2LOGIT_PYTHON" tests/reference/pretrained.py --out DIR --only resnet18 --save-after

For each case NAME it writes into DIR:
    NAME.safetensors    the state_dict (safetensors.torch.save_file; num_batches_tracked kept, int64)
    NAME.pth            torch.save(state_dict)
    NAME.wrapped.pth    torch.save({"state_dict": state_dict})
    NAME.input.npy      float32 (B, 3, H, W), standard normal from a fixed seed
    NAME.logits.npy     float32 eval-mode logits: (B, classes) or (B, 1, H, W)
    NAME.targets.npy    float32: class indices (B,) for a classifier, a {0, 1} mask (B, 1, H, W)
    NAME.json           shapes, seeds, versions, loss_before and loss_after of one train step
    NAME.after.safetensors  (with --save-after) the state_dict after that step

The models are the libraries' own, so the names are the real state-dict names: torchvision's
resnet18 (fc sized to the classes) and segmentation-models-pytorch's Unet / UnetPlusPlus with a
ResNet encoder (encoder_weights=None, classes=1, default decoder). Their weights are the libraries'
default initialisation under torch.manual_seed(seed), except every BatchNorm2d: weight ~ U(0.5, 1.5),
bias ~ N(0, 0.1), running_mean ~ N(0, 0.1), running_var ~ U(0.5, 1.5), so eval mode is not trivial.

The train step starts from the same weights in train mode (batch statistics): the lab's loss
(cross-entropy, mean, for a classifier; for a segmenter the Dice loss of crate/model/losses.rs,
1 - (2 sum(p m) + 1) / (sum(p) + sum(m) + 1), p = sigmoid(logits), over the whole batch), then one
torch.optim.AdamW step over every parameter. loss_before is that step's loss; loss_after the
train-mode loss on the same batch after the step (no_grad, on a copy, still batch statistics).

Requires torch, torchvision, segmentation-models-pytorch, safetensors and numpy (the pinned venv of
scripts/common.sh: ensure_python_references sets $LENS2LOGIT_PYTHON).
"""

import argparse
import copy
import json
import pathlib
import time

import numpy as np
import safetensors
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]

ADAMW = {"lr": 1e-3, "weight_decay": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8}
CLASSIFIER_TARGETS = [1, 3]

# name: (constructor, seed, batch, size). The weights come from torch.manual_seed(seed), the input
# from numpy's default_rng(seed + 100), a segmentation mask from default_rng(seed + 200).
CASES = {
    "resnet18": ("torchvision.models.resnet18(num_classes=4)", 1, 2, 64),
    "unet_resnet18": ("smp.Unet('resnet18', encoder_weights=None, classes=1)", 2, 2, 64),
    "unetpp_resnet18": ("smp.UnetPlusPlus('resnet18', encoder_weights=None, classes=1)", 3, 2, 64),
    "unet_resnet34": ("smp.Unet('resnet34', encoder_weights=None, classes=1)", 4, 2, 64),
    "unetpp_resnet34": ("smp.UnetPlusPlus('resnet34', encoder_weights=None, classes=1)", 5, 2, 64),
    "resnet18_256": ("torchvision.models.resnet18(num_classes=4)", 6, 2, 256),
    "unetpp_resnet18_256": ("smp.UnetPlusPlus('resnet18', encoder_weights=None, classes=1)", 7, 2, 256),
}


def build(constructor, seed):
    torch.manual_seed(seed)
    model = eval(constructor, {"smp": smp, "torchvision": torchvision})
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def dice_loss(logits, mask):
    """crate/model/losses.rs dice_loss, term for term."""
    p = torch.sigmoid(logits)
    intersection = (p * mask).sum() * 2.0
    total = p.sum() + mask.sum()
    return 1.0 - (intersection + 1.0) / (total + 1.0)


def write_case(out, name, save_after):
    constructor, seed, batch, size = CASES[name]
    classifier = constructor.startswith("torchvision")
    start = time.perf_counter()
    model = build(constructor, seed)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / f"{name}.safetensors"))
    torch.save(model.state_dict(), out / f"{name}.pth")
    torch.save({"state_dict": model.state_dict()}, out / f"{name}.wrapped.pth")

    x = np.random.default_rng(seed + 100).standard_normal((batch, 3, size, size)).astype(np.float32)
    np.save(out / f"{name}.input.npy", x)
    x = torch.from_numpy(x)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    np.save(out / f"{name}.logits.npy", logits.numpy().astype(np.float32))

    if classifier:
        targets = torch.tensor(CLASSIFIER_TARGETS[:batch])
        loss_fn, loss_name = F.cross_entropy, "cross_entropy (mean)"
    else:
        mask = np.random.default_rng(seed + 200).integers(0, 2, (batch, 1, size, size))
        targets = torch.from_numpy(mask.astype(np.float32))
        loss_fn, loss_name = dice_loss, "dice (crate/model/losses.rs)"
    np.save(out / f"{name}.targets.npy", targets.numpy().astype(np.float32))

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), **ADAMW)
    optimizer.zero_grad()
    loss = loss_fn(model(x), targets)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        loss_after = loss_fn(copy.deepcopy(model)(x), targets)
    if save_after:
        after = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(after, str(out / f"{name}.after.safetensors"))

    info = {
        "model": name,
        "constructor": constructor,
        "seed": seed,
        "input_seed": seed + 100,
        "target_seed": None if classifier else seed + 200,
        "input_shape": list(x.shape),
        "logits_shape": list(logits.shape),
        "targets": CLASSIFIER_TARGETS[:batch] if classifier else None,
        "targets_shape": list(targets.shape),
        "logits_abs_max": float(logits.abs().max()),
        "logits_std": float(logits.std()),
        "batch_norm_init": {"weight": "U(0.5, 1.5)", "bias": "N(0, 0.1)",
                            "running_mean": "N(0, 0.1)", "running_var": "U(0.5, 1.5)"},
        "parameters": sum(p.numel() for p in model.parameters()),
        "state_dict_tensors": len(state),
        "loss": loss_name,
        "optimizer": {"name": "AdamW", **ADAMW},
        "loss_before": loss.item(),
        "loss_after": loss_after.item(),
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "segmentation_models_pytorch": smp.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "seconds": round(time.perf_counter() - start, 3),
    }
    (out / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"{name}: loss {info['loss_before']:.6f} -> {info['loss_after']:.6f}, "
          f"|logits| max {info['logits_abs_max']:.3g}, {info['seconds']} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--only", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--save-after", action="store_true",
                        help="also write NAME.after.safetensors, the state after the AdamW step")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for case in args.only:
        write_case(args.out, case, args.save_after)
    print(f"wrote {len(args.only)} cases to {args.out} in {time.perf_counter() - start:.1f} s")
