"""Images for the image-classification task: rows decoded on demand, transforms, the automatic image size.

Rows are {"image": encoded PNG/JPEG bytes, "label", "file"}; every image becomes RGB, normalized with
the network's mean and std (ImageNet's for torchvision networks).
"""

from __future__ import annotations

import io
import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

TASK = "image-classification"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet statistics
# Random crops keep at least this share of the image. Milder than ImageNet's 0.08: fine-tuning sets
# are small, and on the digits a 0.35 floor (with flips) cost 2-5 points after 5 epochs (bench/).
MIN_CROP = 0.6
AUTO_SIZES = (32, 224)  # image_size 0: the images' median side, rounded up to a multiple of 32, within these


class ImageRows(torch.utils.data.Dataset):
    """Rows decoded on demand (PIL), converted to RGB and transformed into tensors."""

    def __init__(self, rows: list[dict[str, Any]], label2id: dict[str, int], transform: Any):
        self.images = [image_bytes(r) for r in rows]
        self.files = [r.get("file") or f"row {i}" for i, r in enumerate(rows, start=1)]
        self.labels = [label2id[str(r["label"])] for r in rows]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"pixel_values": self.transform(decode(self.images[i], self.files[i])), "labels": self.labels[i]}


def decode(data: bytes, name: str) -> Any:
    """An encoded image as an RGB PIL image (grayscale, palette and alpha images included)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"image '{name}' cannot be read ({e}); remove it or save it again as PNG/JPEG") from None
    return image.convert("RGB")


def transforms(size: int, train: bool, flip: bool = True, mean: Any = MEAN, std: Any = STD) -> Any:
    """Tensors for the network: random crops (and flips) for training, resize and centre crop otherwise;
    normalized with the network's mean and std (ImageNet's for torchvision)."""
    from torchvision.transforms import v2

    if train:
        steps = [v2.RandomResizedCrop(size, scale=(MIN_CROP, 1.0), antialias=True)]
        steps += [v2.RandomHorizontalFlip()] if flip else []
    else:
        steps = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return v2.Compose([v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def eval_transforms(spec: dict[str, Any]) -> Any:
    """What a saved model's images go through at prediction time (its size, mean and std)."""
    return transforms(spec["image_size"], train=False, mean=spec.get("mean", MEAN), std=spec.get("std", STD))


def auto_size(rows: list[dict[str, Any]], sample: int = 200) -> int:
    """The median longer side of (a sample of) the images, rounded up to a multiple of 32, in AUTO_SIZES.

    Tiny images (digits, icons) are not blown up to 224 pixels, which would cost ~50x the compute
    for no detail; photos are cut down to 224, the size ImageNet weights were trained at.
    """
    from PIL import Image

    step = max(1, len(rows) // sample)
    sides = []
    for row in rows[::step]:
        try:
            with Image.open(io.BytesIO(image_bytes(row))) as image:  # reads the header only
                sides.append(max(image.size))
        except OSError:
            continue  # named with its file when the dataset decodes it
    side = sorted(sides)[len(sides) // 2] if sides else AUTO_SIZES[1]
    size = min(max(-(-side // 32) * 32, AUTO_SIZES[0]), AUTO_SIZES[1])
    log.info("image_size auto: %d pixels (median image side %d)", size, side)
    return size


def image_bytes(row: dict[str, Any]) -> bytes:
    image = row.get("image")
    return image.get("bytes") if isinstance(image, dict) else image


def check_rows(rows: list[dict[str, Any]], split: str) -> None:
    for i, row in enumerate(rows, start=1):
        if not isinstance(image_bytes(row), bytes | bytearray) or not image_bytes(row):
            raise ValueError(
                f"{split} row {i} ({row.get('file') or 'no file name'}) has no image bytes; an {TASK} dataset "
                "comes from an image folder or zip (was it imported for another task?)"
            )
