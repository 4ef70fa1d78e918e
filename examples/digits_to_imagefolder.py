"""Render scikit-learn's bundled handwritten digits (1,797 images, 8x8 pixels) as an image-folder zip.

The zip holds one folder per class (digits/0/0000.png ... digits/9/1796.png), the layout the
Datasets tab and `datasets add` import for image classification. No download: the digits ship
inside scikit-learn.

    .venv/bin/python examples/digits_to_imagefolder.py --out digits.zip
    .venv/bin/python -m backend.cli datasets add digits.zip --name digits --task image-classification
    .venv/bin/python -m backend.cli train --task image-classification --dataset digits --no-image-flip --wait
"""

from __future__ import annotations

import argparse
import io
import logging
import zipfile
from pathlib import Path

log = logging.getLogger("digits")


def render(out: Path, limit: int = 0, size: int = 8) -> int:
    """Write the zip; returns the number of images. Ink is dark on white, as on paper."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    count = len(digits.images) if not limit else min(limit, len(digits.images))
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(count):
            pixels = (255 - digits.images[i] * (255 / 16)).round().astype(np.uint8)  # values are 0..16
            image = Image.fromarray(pixels, mode="L")
            if size != 8:
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            zf.writestr(f"digits/{digits.target[i]}/{i:04d}.png", buf.getvalue())
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="digits.zip", help="zip file to write (default: digits.zip)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all 1,797)")
    parser.add_argument("--size", type=int, default=8, help="pixels per side (default: the original 8)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = render(Path(args.out), args.limit, args.size)
    log.info("wrote %d digit images in 10 class folders to %s", n, args.out)


if __name__ == "__main__":
    main()
