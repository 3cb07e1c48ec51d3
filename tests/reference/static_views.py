"""Golden arrays for the paper's static ISP (the 12 views), made with the libraries the paper used.

    python3 tests/reference/static_views.py            # writes tests/golden/static_*.npz
    python3 tests/reference/static_views.py --bench 20 # times all 12 views of one 256x256 tile
    python3 tests/reference/static_views.py --views-dir TILES OUT  # `lens2logit views TILES --all`

Requires numpy, scipy and colour-demosaicing from PyPI. scikit-image 0.18's unsharp_mask is
emulated below (recent scikit-image changed its behaviour): with multichannel=True on the 2-D Y
plane it treats each column as a channel, so the blur is a vertical-only 1-D gaussian (sigma 1,
mode 'reflect', truncate 4) and, with preserve_range=True, the result Y + (Y - blur) is not
clipped. The pipeline itself follows the paper's processing/pipeline_numpy.py.
"""

import argparse
import json
import pathlib
import time
import warnings

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.signal import convolve2d

warnings.filterwarnings("ignore")
from colour_demosaicing import (  # noqa: E402
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT.parent / "shared" / "data" / "raw2logit-demo"

CAMERAS = {
    "microscopy": dict(
        black_level=[9.834368023181512e-06] * 4,
        white_balance=[-0.6567, 1.9673, 3.5304],
        colour_matrix=[-2.0338, 0.0933, 0.4157, -0.0286, 2.6464, -0.0574, -0.5516, -0.0947, 2.9308],
    ),
    "drone": dict(
        black_level=[0.0625, 0.0626, 0.0625, 0.0626],
        white_balance=[2.86653646, 1.0, 1.73079425],
        colour_matrix=[1.50768983, -0.33571374, -0.17197604, -0.23048614, 1.70698738,
                       -0.47650126, -0.03119153, -0.32803956, 1.35923111],
    ),
}

YUV_FROM_RGB = np.array([[0.299, 0.587, 0.114],
                         [-0.14714119, -0.28886916, 0.43601035],
                         [0.61497538, -0.51496512, -0.10001026]])
RGB_FROM_YUV = np.linalg.inv(YUV_FROM_RGB)

DEBAYER = {
    "bilinear": demosaicing_CFA_Bayer_bilinear,
    "malvar2004": demosaicing_CFA_Bayer_Malvar2004,
    "menon2007": demosaicing_CFA_Bayer_Menon2007,
}


def on_y(img, fn):
    """scikit-image's rgb2yuv / yuv2rgb around a filter of the Y plane."""
    yuv = img @ YUV_FROM_RGB.T
    yuv[:, :, 0] = fn(yuv[:, :, 0])
    return yuv @ RGB_FROM_YUV.T


SHARPENING = {
    "sharpening_filter": lambda y: convolve2d(
        y, np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]), "same", boundary="fill", fillvalue=0),
    # skimage 0.18 unsharp_mask(Y, radius=1, amount=1, multichannel=True, preserve_range=True)
    "unsharp_masking": lambda y: y + (y - ndimage.gaussian_filter(y, sigma=(1.0, 0.0), mode="reflect", truncate=4.0)),
    # the isotropic 2-D unsharp mask (what current scikit-image does on a 2-D plane), no clipping
    "unsharp_masking_isotropic": lambda y: y + (y - ndimage.gaussian_filter(y, sigma=1.0, mode="reflect", truncate=4.0)),
}

DENOISING = {
    "gaussian_denoising": lambda y: ndimage.gaussian_filter(y, 0.5),
    "median_denoising": lambda y: ndimage.median_filter(y, 3),
}

VIEWS = [(d, s, n) for d in DEBAYER for s in ("sharpening_filter", "unsharp_masking") for n in DENOISING]


def process(raw, camera, debayer, sharpening, denoising, gamma=2.2):
    img = raw.astype(np.float64)
    bl = camera["black_level"]
    img[0::2, 0::2] -= bl[0]
    img[0::2, 1::2] -= bl[1]
    img[1::2, 0::2] -= bl[2]
    img[1::2, 1::2] -= bl[3]
    img = DEBAYER[debayer](img)
    img = img * np.asarray(camera["white_balance"])
    img = np.einsum("ijk,lk->ijl", img, np.asarray(camera["colour_matrix"]).reshape(3, 3))
    img = on_y(img, SHARPENING[sharpening])
    img = on_y(img, DENOISING[denoising])
    img = np.clip(img, 0, 1)
    return img ** (1.0 / gamma)


def png_tile(path):
    """Channel 0 of a tile PNG / 255, as the lab decodes it."""
    return np.asarray(Image.open(path))[:, :, 0].astype(np.float64) / 255.0


def demo_tile(name, y, x, size=48):
    """A demo tile, cropped at an even offset (keeps the RGGB phase)."""
    return png_tile(DEMO / f"{name}.png")[y:y + size, x:x + size]


def synthetic_tile(height=40, width=56, seed=0):
    """Smooth float mosaic plus noise: no exact ties in Menon2007's direction test."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    smooth = 0.5 + 0.25 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.08 * np.sin((xx + 2 * yy) / 3.0)
    tile = smooth + 0.02 * rng.standard_normal((height, width))
    assert 0.0 < tile.min() and tile.max() < 1.0  # no clipping: clipped runs would tie
    return tile


FIXTURES = {
    "synthetic": lambda: synthetic_tile(),
    "micro": lambda: demo_tile("micro", 32, 64),
    "car": lambda: demo_tile("car", 32, 176),
}


def write_golden(out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in FIXTURES.items():
        # the stored float32 tile is the input of record: process exactly that
        raw = make().astype(np.float32)
        arrays = {"raw": raw}
        for camera_name, camera in CAMERAS.items():
            for view in VIEWS:
                arrays[f"{camera_name}/{'-'.join(view)}"] = process(raw, camera, *view).astype(np.float32)
            iso = ("bilinear", "unsharp_masking_isotropic", "gaussian_denoising")
            arrays[f"{camera_name}/{'-'.join(iso)}"] = process(raw, camera, *iso).astype(np.float32)
        path = out_dir / f"static_{name}.npz"
        np.savez_compressed(path, **arrays)
        print(f"wrote {path} ({path.stat().st_size} bytes, {len(arrays) - 1} views)")


def bench(repeats):
    """Median seconds for all 12 views of the 256x256 microscopy demo tile."""
    raw = demo_tile("micro", 0, 0, 256)
    camera = CAMERAS["microscopy"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for view in VIEWS:
            process(raw, camera, *view)
        times.append(time.perf_counter() - start)
    print(json.dumps({"python_all_12_views_s": float(np.median(times)), "repeats": repeats}))


def views_dir(tiles, out):
    """What `lens2logit views TILES --camera microscopy --all --out OUT` does, as the paper's code
    would: every PNG tile's 12 views as float32 (H, W, 3) .npy files in OUT/<tile>/<view>.npy."""
    camera = CAMERAS["microscopy"]
    for path in sorted(tiles.glob("*.png")):
        raw = png_tile(path)
        folder = out / path.stem
        folder.mkdir(parents=True)
        for view in VIEWS:
            np.save(folder / f"{'-'.join(view)}.npy", process(raw, camera, *view).astype(np.float32))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", type=int, default=0, help="time all 12 views N times instead")
    parser.add_argument("--views-dir", type=pathlib.Path, nargs=2, metavar=("TILES", "OUT"),
                        help="write every tile's 12 views as .npy instead")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tests" / "golden")
    args = parser.parse_args()
    if args.views_dir:
        views_dir(*args.views_dir)
    elif args.bench:
        bench(args.bench)
    else:
        write_golden(args.out)
