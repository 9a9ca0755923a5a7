#!/usr/bin/env python3
"""Generate reference inputs and outputs of the bundled models on the samples.

Usage (from the repository root):

    python3 scripts/gen_sample_expectations.py

Reads models/samples/samples.toml and, for each model in MODELS and each
[[sample]], writes

    models/expected/<model-stem>/<sample-name>.json

plus models/expected/summary.md (a human-readable table) and
models/expected/VERSIONS.txt (tool versions).

Preprocessing (the Rust side implements the same specification):

1. Decode the image with Pillow and ``.convert("RGB")`` (an alpha channel is
   dropped without compositing; EXIF orientation is NOT applied), giving a
   uint8 H x W x 3 array.
2. Crop the box [left, top, right, bottom) (right/bottom exclusive).  A sample
   without ``crop`` uses the centred square: side = min(w, h),
   left = (w - side) // 2, top = (h - side) // 2.
3. Resize the crop (cw x ch) to the model's W x H by area averaging,
   separable, in float64.  Horizontally, with s = cw / W, output column o
   covers the source interval [o*s, (o+1)*s); source column x gets the weight
   len([x, x+1) ∩ [o*s, (o+1)*s)) / s.  Vertically the same with ch / H.
   Each channel: out = Wy @ crop_channel @ Wx.T (float64).
4. Normalise: (v - mean[c]) * scale in float64, cast to float32; NCHW with
   batch 1, channels in RGB order.

The models run in onnxruntime (CPUExecutionProvider, graph optimisations
off, one intra-op thread).  JSON floats are float32 values written as the
shortest repr of the equivalent Python float (``float(np.float32(v))``), so
repeated runs produce byte-identical files.  Nothing here is random.
"""

from __future__ import annotations

import json
import platform
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
SAMPLES_DIR = MODELS_DIR / "samples"
OUT_DIR = MODELS_DIR / "expected"

MEAN = (122.781998, 117.000999, 104.297997)  # RGB
SCALE = 0.00390625
AGE_BINS = [0.25] + [float(a) for a in range(1, 81)]  # 81 bins
GENDER_LABELS = ["female", "male"]

# stem -> (input name, (H, W), output name, kind)
MODELS = {
    "age-v1": ("images", (64, 64), "probabilities", "age"),
    "gender-v1": ("images", (32, 32), "probabilities", "gender"),
}


# --------------------------------------------------------------------------
# preprocessing
# --------------------------------------------------------------------------

def load_rgb(path: Path) -> np.ndarray:
    """Decode to uint8 H x W x 3 (RGB); alpha is dropped, not composited."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def crop_box(sample: dict, w: int, h: int) -> list[int]:
    """The [left, top, right, bottom) box to use for a sample."""
    if "crop" in sample:
        left, top, right, bottom = (int(v) for v in sample["crop"])
    else:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        right, bottom = left + side, top + side
    if not (0 <= left < right <= w and 0 <= top < bottom <= h):
        raise ValueError(f"crop {[left, top, right, bottom]} outside image {w}x{h}")
    return [left, top, right, bottom]


def area_weights(src: int, dst: int) -> np.ndarray:
    """dst x src float64 matrix of area-averaging weights.

    Output index o covers [o*s, (o+1)*s) with s = src / dst; source index x
    (the interval [x, x+1)) gets weight overlap / s.  Each row sums to 1.
    """
    s = src / dst
    wts = np.zeros((dst, src), dtype=np.float64)
    for o in range(dst):
        lo, hi = o * s, (o + 1) * s
        for x in range(int(np.floor(lo)), min(src, int(np.ceil(hi)))):
            overlap = min(x + 1.0, hi) - max(float(x), lo)
            if overlap > 0.0:
                wts[o, x] = overlap / s
    return wts


def preprocess(rgb: np.ndarray, box: list[int], out_hw: tuple[int, int]) -> np.ndarray:
    """Crop, area-resize and normalise to a float32 [1, 3, H, W] tensor."""
    left, top, right, bottom = box
    crop = rgb[top:bottom, left:right, :].astype(np.float64)
    ch, cw = crop.shape[:2]
    out_h, out_w = out_hw
    wy = area_weights(ch, out_h)
    wx = area_weights(cw, out_w)
    planes = []
    for c in range(3):
        resized = wy @ crop[:, :, c] @ wx.T
        planes.append((resized - MEAN[c]) * SCALE)
    return np.stack(planes)[None].astype(np.float32)


# --------------------------------------------------------------------------
# inference and output
# --------------------------------------------------------------------------

def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def floats(arr: np.ndarray) -> list[float]:
    return [float(np.float32(v)) for v in np.asarray(arr, dtype=np.float32).reshape(-1)]


def tensor_json(name: str, arr: np.ndarray) -> dict:
    return {"name": name, "shape": [int(d) for d in arr.shape], "data": floats(arr)}


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        json.dump(obj, fh, sort_keys=False, indent=None, separators=(",", ":"))
        fh.write("\n")


def main() -> None:
    with open(SAMPLES_DIR / "samples.toml", "rb") as fh:
        samples = tomllib.load(fh)["sample"]

    sessions = {stem: session(MODELS_DIR / f"{stem}.onnx") for stem in MODELS}
    rows = []
    for sample in samples:
        rgb = load_rgb(SAMPLES_DIR / sample["file"])
        h, w = rgb.shape[:2]
        box = crop_box(sample, w, h)
        row = {"sample": sample["name"], "role": sample.get("role", ""), "crop": box}
        for stem, (in_name, hw, out_name, kind) in MODELS.items():
            x = preprocess(rgb, box, hw)
            (y,) = sessions[stem].run([out_name], {in_name: x})
            y = np.asarray(y, dtype=np.float32)
            record = {
                "sample": sample["name"],
                "model": stem,
                "crop": box,
                "input": tensor_json(in_name, x),
                "output": tensor_json(out_name, y),
            }
            probs = y.reshape(-1)
            if kind == "age":
                assert probs.size == len(AGE_BINS)
                age = float(np.dot(probs.astype(np.float64), np.array(AGE_BINS, dtype=np.float64)))
                record["expected_age"] = age
                row["age"] = age
            else:
                assert probs.size == len(GENDER_LABELS)
                k = int(np.argmax(probs))
                record["label"] = GENDER_LABELS[k]
                record["probability"] = float(np.float32(probs[k]))
                row["gender"] = (GENDER_LABELS[k], float(np.float32(probs[k])))
            write_json(OUT_DIR / stem / f"{sample['name']}.json", record)
        rows.append(row)

    lines = [
        "# Expected model outputs on the samples",
        "",
        "Generated by `python3 scripts/gen_sample_expectations.py`; see that script for the",
        "preprocessing spec. Age is the expectation over the 81 age bins; gender is the argmax",
        "label and its probability.",
        "",
        "| sample | role | crop | age | gender (p) |",
        "|---|---|---|---:|---|",
    ]
    for r in rows:
        g, p = r["gender"]
        lines.append(f"| {r['sample']} | {r['role']} | {r['crop']} | {r['age']:.2f} | {g} ({p:.3f}) |")
    summary = "\n".join(lines) + "\n"
    (OUT_DIR / "summary.md").write_text(summary, encoding="utf-8")
    versions = (
        f"python {platform.python_version()}\n"
        f"numpy {np.__version__}\n"
        f"onnx {onnx.__version__}\n"
        f"onnxruntime {ort.__version__}\n"
        f"pillow {PIL.__version__}\n"
    )
    (OUT_DIR / "VERSIONS.txt").write_text(versions, encoding="utf-8")
    print(summary, end="")
    print(versions, end="")


if __name__ == "__main__":
    main()
