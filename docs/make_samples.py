"""Writes the sample images the README's predict examples use, into docs/samples/.

    python docs/make_samples.py          # needs MNIST (MNISTCTL_DATA_DIR or the cache)

photo.jpg     a test digit written on textured, unevenly lit paper, slightly turned, as a phone photo
scan.png      a test digit cut tightly from a scan: dark ink on white, no margin
mnist.png     a test digit in MNIST form: 28x28, light on dark (read as is, without preparation)
drawing.png   a 7 drawn with a thick pen in a paint program
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mnistctl import data

OUT = Path(__file__).parent / "samples"


def photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    ink = Image.fromarray(digit).resize((168, 168), Image.BICUBIC).rotate(-8, resample=Image.BICUBIC)
    h, w = 300, 400
    y, x = np.mgrid[0:h, 0:w]
    paper = 205 + 30 * (x / w) - 25 * (y / h) + rng.normal(0, 6, (h, w))
    canvas = np.clip(paper, 0, 255)
    alpha = np.zeros((h, w))
    alpha[60:228, 130:298] = np.asarray(ink, dtype=float) / 255
    canvas = canvas * (1 - 0.8 * alpha)
    rgb = np.stack([canvas * 1.0, canvas * 0.97, canvas * 0.9], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))


def scan(digit: np.ndarray) -> Image.Image:
    rows, cols = np.nonzero(digit > 30)
    tight = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    big = Image.fromarray(255 - tight).resize((tight.shape[1] * 4, tight.shape[0] * 4), Image.BICUBIC)
    return big


def drawing() -> Image.Image:
    image = Image.new("L", (220, 260), 255)
    pen = ImageDraw.Draw(image)
    pen.line([(40, 45), (180, 45), (95, 225)], fill=20, width=22, joint="curve")
    pen.line([(75, 135), (150, 135)], fill=20, width=16)
    return image


def main() -> None:
    mnist = data.load(download=False)
    images, labels = mnist.test_images.numpy(), mnist.test_labels.numpy()
    rng = np.random.default_rng(0)
    OUT.mkdir(exist_ok=True)
    first = {digit: int(np.flatnonzero(labels == digit)[0]) for digit in (4, 2, 1)}
    photo(images[first[4]], rng).save(OUT / "photo.jpg", quality=85)
    scan(images[first[2]]).save(OUT / "scan.png")
    Image.fromarray(images[first[1]]).save(OUT / "mnist.png")
    drawing().save(OUT / "drawing.png")
    print(f"wrote {OUT}: photo.jpg (a 4), scan.png (a 2), mnist.png (a 1), drawing.png (a 7)")


if __name__ == "__main__":
    main()
