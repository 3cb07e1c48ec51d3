"""How exact the parametrized ISP's float32 gradients can be: seeded draws at the datasets' size
(8 tiles of 256x256), some ill-conditioned, each with its float64 gradients (PyTorch autograd, the
module of param_isp.py) and PyTorch's own float32 error on the same draw, for the core test
`cpu_f32_gradients_as_exact_as_pytorch_on_ill_conditioned_draws` (tests/core/param_isp.rs), which
holds ours to max(2e-3, 4x PyTorch's error) and each draw's worst to PyTorch's worst.

    python3 tests/reference/isp_numerics.py --out target/references/isp_numerics.safetensors

Requires torch and safetensors from PyPI. Written by the test command (scripts/common.sh), not
committed: 76 MB.
"""

import argparse
import pathlib

import numpy as np
import torch
from safetensors.torch import save_file

from param_isp import initial_params, run

# name: (camera, raw range, noise, batch norm, parameter spread). "flat" is nearly constant, so
# batch norm divides by a tiny spread and the gradients are sums of large terms that cancel;
# "dark" lies at the black level, so most pixels clip in the gamma stage.
DRAWS = {
    "microscopy": ("microscopy", (0.35, 0.85), 0.05, True, 0.0),
    "drone": ("drone", (0.07, 0.45), 0.05, True, 0.0),
    "perturbed": ("drone", (0.07, 0.45), 0.05, True, 0.2),
    "flat": ("drone", (0.15, 0.15), 0.002, True, 0.0),
    "dark": ("drone", (0.06, 0.07), 0.01, True, 0.0),
    "no_bn": ("microscopy", (0.35, 0.85), 0.05, False, 0.0),
}
SHAPE = (8, 256, 256)


def relative(ours, reference):
    """norm of the difference / norm of the reference (tests/shared/param_isp.rs's measure)."""
    norm = reference.norm().item()
    diff = (ours.double() - reference).norm().item()
    return diff / norm if norm else diff


def draw(seed, camera, lo_hi, noise, spread):
    rng = np.random.default_rng(seed)
    lo, hi = lo_hi
    b, h, w = SHAPE
    yy, xx = np.mgrid[0:h, 0:w]
    level = lo + (hi - lo) * rng.random((b, 1, 1))
    shade = (hi - lo) * 0.3 * np.sin(xx / rng.uniform(5, 40, (b, 1, 1))) * np.cos(yy / rng.uniform(5, 40, (b, 1, 1)))
    raw = np.clip(level + shade + noise * rng.standard_normal(SHAPE), 0.0, 1.0)
    upstream = rng.standard_normal((b, 3, h, w))
    params = initial_params(camera, torch.float64)
    for name, value in params.items():
        params[name] = value * torch.tensor(1.0 + spread * rng.uniform(-1, 1, tuple(value.shape)))
    # float32-representable inputs, so both precisions start from the same numbers
    as64 = lambda a: torch.tensor(np.asarray(a, dtype=np.float32).astype(np.float64))
    return as64(raw), as64(upstream), {k: v.float().double() for k, v in params.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    out = {}
    for seed, (name, (camera, lo_hi, noise, bn, spread)) in enumerate(DRAWS.items()):
        raw, upstream, params = draw(seed, camera, lo_hi, noise, spread)
        exact = run(raw, params, upstream, bn)
        single = run(raw.float(), {k: v.float() for k, v in params.items()}, upstream.float(), bn)
        out[f"{name}/raw"] = raw.float()
        out[f"{name}/upstream"] = upstream.float()
        out[f"{name}/batch_norm"] = torch.tensor([int(bn)])
        for key, value in params.items():
            out[f"{name}/param.{key}"] = value
        # the raw batch's and every parameter's gradient (the stages' are the committed golden's)
        for key in [k for k in exact if k.startswith("grad.") and not k.startswith("grad.stage.")]:
            out[f"{name}/{key}"] = exact[key].contiguous()
            out[f"{name}/torch_f32_error.{key}"] = torch.tensor([relative(single[key], exact[key])])
        worst = max((out[f"{name}/torch_f32_error.{k}"].item(), k) for k in exact if f"{name}/torch_f32_error.{k}" in out)
        print(f"{name}: PyTorch float32's worst gradient error {worst[0]:.2e} ({worst[1]})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    part = args.out.with_suffix(".part")
    save_file(out, str(part))
    part.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
