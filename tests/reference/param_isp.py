"""Golden outputs and gradients of the parametrized ISP, from PyTorch autograd in float64.

    python3 tests/reference/param_isp.py            # writes tests/golden/param_isp.safetensors
    python3 tests/reference/param_isp.py --bench 20 # times forward+backward, B=1 and B=8, 256x256

Requires torch and safetensors from PyPI. The module follows the paper's ParametrizedProcessing
(processing/pipeline_torch.py, track_stages=True): every tracked stage lies on the path to the
output, so its gradient is meaningful.
"""

import argparse
import json
import pathlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT.parent / "shared" / "data" / "raw2logit-demo"

CAMERAS = {
    "microscopy": ([9.834368023181512e-06] * 4, [-0.6567, 1.9673, 3.5304],
                   [-2.0338, 0.0933, 0.4157, -0.0286, 2.6464, -0.0574, -0.5516, -0.0947, 2.9308]),
    "drone": ([0.0625, 0.0626, 0.0625, 0.0626], [2.86653646, 1.0, 1.73079425],
              [1.50768983, -0.33571374, -0.17197604, -0.23048614, 1.70698738, -0.47650126,
               -0.03119153, -0.32803956, 1.35923111]),
}
RGB_TO_YUV = [[0.299, 0.587, 0.114],
              [-0.14714119, -0.28886916, 0.43601035],
              [0.61497538, -0.51496512, -0.10001026]]
STAGES = ["demosaic", "colour_correction", "sharpening", "denoising", "gamma"]


def initial_params(camera, dtype):
    black_level, white_balance, colour_matrix = CAMERAS[camera]
    k_rb = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=dtype) / 4
    k_g = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=dtype) / 4
    debayer = torch.zeros(3, 3, 3, 3, dtype=dtype)
    debayer[0, 0], debayer[1, 1], debayer[2, 2] = k_rb, k_g, k_rb
    g1 = torch.exp(-torch.arange(-2, 3, dtype=dtype) ** 2 / (2 * 0.5 ** 2))
    g1 = g1 / g1.sum()
    return {
        "black_level": torch.tensor(black_level, dtype=dtype),
        "white_balance": torch.tensor(white_balance, dtype=dtype).reshape(1, 3),
        "colour_correction": torch.tensor(colour_matrix, dtype=dtype).reshape(3, 3),
        "gamma_correct": torch.tensor([2.2], dtype=dtype),
        "debayer.weight": debayer,
        "sharpening_filter.weight": torch.tensor([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=dtype).reshape(1, 1, 3, 3),
        "gaussian_blur.weight": torch.outer(g1, g1).reshape(1, 1, 5, 5),
    }


def forward(raw, p, batch_norm):
    """raw (B, H, W) -> output (B, 3, H, W) and the tracked stages."""
    m_yuv = torch.tensor(RGB_TO_YUV, dtype=raw.dtype)
    m_rgb = torch.linalg.inv(m_yuv)
    bl = p["black_level"]
    b, h, w = raw.shape
    rgb = torch.zeros(b, 3, h, w, dtype=raw.dtype)
    rgb[:, 0, 0::2, 0::2] = raw[:, 0::2, 0::2] - bl[0]
    rgb[:, 1, 0::2, 1::2] = raw[:, 0::2, 1::2] - bl[1]
    rgb[:, 1, 1::2, 0::2] = raw[:, 1::2, 0::2] - bl[2]
    rgb[:, 2, 1::2, 1::2] = raw[:, 1::2, 1::2] - bl[3]
    stages = {}
    rgb = F.conv2d(F.pad(rgb, (1, 1, 1, 1), mode="reflect"), p["debayer.weight"])
    stages["demosaic"] = rgb
    rgb = torch.einsum("bchw,kc->bchw", rgb, p["white_balance"])
    rgb = torch.einsum("bchw,kc->bkhw", rgb, p["colour_correction"])
    stages["colour_correction"] = rgb
    yuv = torch.einsum("bchw,kc->bkhw", rgb, m_yuv)
    y = F.conv2d(yuv[:, :1], p["sharpening_filter.weight"], padding=1)
    rgb = torch.einsum("bchw,kc->bkhw", torch.cat([y, yuv[:, 1:]], 1), m_rgb)
    stages["sharpening"] = rgb
    yuv = torch.einsum("bchw,kc->bkhw", rgb, m_yuv)
    y = F.conv2d(F.pad(yuv[:, :1], (2, 2, 2, 2), mode="reflect"), p["gaussian_blur.weight"])
    rgb = torch.einsum("bchw,kc->bkhw", torch.cat([y, yuv[:, 1:]], 1), m_rgb)
    stages["denoising"] = rgb
    rgb = torch.clip(rgb, 1e-5, 1)
    rgb = torch.exp((1 / p["gamma_correct"]) * torch.log(rgb))
    stages["gamma"] = rgb
    if batch_norm:
        rgb = F.batch_norm(rgb, None, None, training=True, momentum=0.0, eps=1e-5)
    return rgb, stages


def run(raw, params, upstream, batch_norm):
    raw = raw.clone().requires_grad_(True)
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out, stages = forward(raw, p, batch_norm)
    for s in stages.values():
        s.retain_grad()
    (out * upstream).sum().backward()
    result = {"output": out.detach()}
    for name, s in stages.items():
        result[f"stage.{name}"] = s.detach()
        result[f"grad.stage.{name}"] = s.grad
    result["grad.raw"] = raw.grad
    for name, v in p.items():
        result[f"grad.{name}"] = v.grad
    return result


# Each camera sees tiles of its own dataset: two crops of its real demo tile (quantized) and two
# synthetic tiles in that dataset's raw range (one smooth, one noisy).
BATCHES = {
    "microscopy": ("micro", [(40, 80), (160, 120)], (0.35, 0.85)),
    "drone": ("car", [(32, 176), (200, 40)], (0.07, 0.45)),
}


def tiles(camera, h=16, w=24):
    name, crops, (lo, hi) = BATCHES[camera]
    full = np.asarray(Image.open(DEMO / f"{name}.png"))[:, :, 0].astype(np.float64) / 255.0
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = lo + (hi - lo) * (0.5 + 0.5 * np.sin(xx / 4.0) * np.cos(yy / 3.0))
    noisy = np.clip(lo + (hi - lo) * (0.5 + 0.15 * rng.standard_normal((h, w))), 0.0, 1.0)
    batch = np.stack([full[y:y + h, x:x + w] for y, x in crops] + [smooth, noisy])
    return torch.tensor(batch.astype(np.float32).astype(np.float64))


def write_golden(path):
    torch.manual_seed(0)
    golden = {}
    for camera in CAMERAS:
        raw = tiles(camera)
        upstream = torch.randn(raw.shape[0], 3, *raw.shape[1:], dtype=torch.float64)
        golden[f"{camera}/raw"] = raw
        golden[f"{camera}/upstream"] = upstream
        params = initial_params(camera, torch.float64)
        for name, v in params.items():
            golden[f"{camera}/param.{name}"] = v
        for bn in (True, False):
            for k, v in run(raw, params, upstream, bn).items():
                golden[f"{camera}/{'bn' if bn else 'no_bn'}/{k}"] = v.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(golden, str(path))
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(golden)} tensors)")


def bench(repeats):
    torch.set_num_threads(int(torch.get_num_threads()))
    params = initial_params("drone", torch.float32)
    out = {"torch_threads": torch.get_num_threads()}
    for b in (1, 8):
        raw = torch.rand(b, 256, 256)
        upstream = torch.randn(b, 3, 256, 256)
        times = []
        for i in range(repeats + 2):
            start = time.perf_counter()
            run(raw, params, upstream, True)
            if i >= 2:
                times.append(time.perf_counter() - start)
        out[f"torch_b{b}_s"] = float(np.median(times))
    print(json.dumps(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tests" / "golden" / "param_isp.safetensors")
    args = parser.parse_args()
    if args.bench:
        bench(args.bench)
    else:
        write_golden(args.out)
