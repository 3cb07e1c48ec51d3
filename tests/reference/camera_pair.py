"""A camera's shot as the camera fit meets it, made by independent tools: a DNG written by PiDNG
from a real raw tile of the paper's datasets, and the "camera's JPEG" rendered from that DNG by
LibRaw (rawpy): its own demosaicing (AHD), the DNG's white balance and colour matrix, the sRGB
gamma, cut to the DNG's default crop and saved at JPEG quality 95.

    python camera_pair.py --tile car.png --out DIR [--scale 2] [--exif-orientation 6]

writes DIR/shot.dng and DIR/shot.jpg. --scale 2 stores the JPEG at half the crop's size (area
average, as a camera's smaller JPEG); --exif-orientation 6 stores it turned a quarter
anticlockwise with EXIF orientation 6, so that a viewer shows it as the camera saw it.
"""

import argparse
from pathlib import Path

import numpy as np
import rawpy
from PIL import Image
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import CFAPattern, CalibrationIlluminant, DNGVersion, Orientation, PhotometricInterpretation

WHITE = 4095
# Raw-Drone's camera as the paper's code gives it (black level over white, white balance gains,
# camera -> linear sRGB).
BLACK = 0.0625
GAINS = np.array([2.86653646, 1.0, 1.73079425])
RGB_CAM = np.array(
    [
        [1.50768983, -0.33571374, -0.17197604],
        [-0.23048614, 1.70698738, -0.47650126],
        [-0.03119153, -0.32803956, 1.35923111],
    ]
)
# linear sRGB (D65) -> XYZ
XYZ_SRGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
# The default crop: margins of 8 and 24 px, as cameras keep a few pixels for demosaicing (and not
# square, so that a JPEG turned a quarter shows in its size).
MARGIN_X, MARGIN_Y = 8, 24


def rationals(values, denominator=10000):
    return [[int(round(v * denominator)), denominator] for v in values]


def write_dng(mosaic: np.ndarray, path: Path) -> None:
    height, width = mosaic.shape
    # XYZ -> camera: the inverse of camera -> XYZ (camera -> sRGB -> XYZ)
    cam_xyz = np.linalg.inv(XYZ_SRGB @ RGB_CAM)
    t = DNGTags()
    t.set(Tag.ImageWidth, width)
    t.set(Tag.ImageLength, height)
    t.set(Tag.TileWidth, width)
    t.set(Tag.TileLength, height)
    t.set(Tag.Orientation, Orientation.Horizontal)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevel, int(round(BLACK * WHITE)))
    t.set(Tag.WhiteLevel, WHITE)
    t.set(Tag.ColorMatrix1, rationals(cam_xyz.flatten()))
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, rationals(1.0 / GAINS))
    t.set(Tag.DefaultCropOrigin, [MARGIN_X, MARGIN_Y])
    t.set(Tag.DefaultCropSize, [width - 2 * MARGIN_X, height - 2 * MARGIN_Y])
    t.set(Tag.BaselineExposure, [[0, 100]])
    t.set(Tag.Make, "Lens2Logit")
    t.set(Tag.Model, "camera pair")
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    t.set(Tag.PreviewColorSpace, 2)
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    writer.convert(mosaic, filename=str(path.with_suffix("")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tile", required=True, help="a raw tile of the demo data (8-bit PNG)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--exif-orientation", type=int, default=1, choices=[1, 6])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # channel 0 / 255 is the raw value in [0, 1], the black level kept
    tile = np.asarray(Image.open(args.tile))[..., 0].astype(np.float64) / 255.0
    mosaic = np.clip(np.round(tile * WHITE), 0, WHITE).astype(np.uint16)
    dng = out / "shot.dng"
    write_dng(mosaic, dng)

    with rawpy.imread(str(dng)) as raw:
        rgb = raw.postprocess(
            demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
            use_camera_wb=True,
            output_color=rawpy.ColorSpace.sRGB,
            gamma=(2.4, 12.92),
            no_auto_bright=True,
            output_bps=8,
            user_flip=0,
        )
    height, width = mosaic.shape
    if rgb.shape[:2] == (height, width):
        # LibRaw renders the whole mosaic: the camera's JPEG covers the default crop
        rgb = rgb[MARGIN_Y : height - MARGIN_Y, MARGIN_X : width - MARGIN_X]
    shown = Image.fromarray(rgb)
    if args.scale > 1:
        shown = shown.resize((shown.width // args.scale, shown.height // args.scale), Image.BOX)
    exif = Image.Exif()
    if args.exif_orientation == 6:
        # stored a quarter anticlockwise: orientation 6 turns it clockwise to show it
        stored = shown.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = 6
    else:
        stored = shown
    stored.save(out / "shot.jpg", quality=95, exif=exif.tobytes())
    # the image as shown, for the tests' own PSNR
    shown.save(out / "shown.png")
    print(f"{dng}: {width}x{height}; shot.jpg {stored.width}x{stored.height}, orientation {args.exif_orientation}")


if __name__ == "__main__":
    main()
