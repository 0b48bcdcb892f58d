#!/usr/bin/env python3
"""Loads a Lockstep checkpoint into the equivalent torch nn.Sequential with strict=True
and checks `lockstep predict` against it on the same rows.

    python3 tools/torch_check_checkpoint.py --checkpoint ck.safetensors --input rows.npy [--lockstep .build/release/lockstep]

The model is rebuilt from the checkpoint's metadata alone (lockstep.layers, lockstep.data:
sample shape, classes, scale and standardization). Prints the largest probability
difference; exits 1 above --tolerance (default 1e-4) or when any prediction differs.
Needs torch, safetensors and numpy.
"""
import argparse, io, json, os, subprocess, sys
import numpy as np, torch, torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(layers, shape):
    """nn.Sequential of Lockstep's layer strings, from a sample shape [C,H,W] or [F]."""
    first_image = layers and layers[0].split()[0] in ("conv", "maxpool", "avgpool")
    if len(shape) == 2: shape = [1] + shape
    image = tuple(shape) if (first_image and len(shape) == 3) else None
    flat = int(np.prod(shape))
    modules = []
    for text in layers:
        w = text.split(); head = w[0]; opts = dict(zip(w[3::2], map(int, w[4::2]))) if head == "conv" else dict(zip(w[2::2], map(int, w[3::2])))
        if head == "linear":
            modules.append(nn.Linear(flat, int(w[1]))); flat = int(w[1])
        elif head == "conv":
            c, k, s, p = int(w[1]), int(w[2]), opts.get("stride", 1), opts.get("pad", 0)
            modules.append(nn.Conv2d(image[0], c, k, stride=s, padding=p))
            image = (c, (image[1] + 2 * p - k) // s + 1, (image[2] + 2 * p - k) // s + 1); flat = int(np.prod(image))
        elif head in ("maxpool", "avgpool"):
            k = int(w[1]); s = opts.get("stride", k)
            modules.append(nn.MaxPool2d(k, s) if head == "maxpool" else nn.AvgPool2d(k, s))
            image = (image[0], (image[1] - k) // s + 1, (image[2] - k) // s + 1); flat = int(np.prod(image))
        elif head == "flatten":
            modules.append(nn.Flatten()); image = None
        elif head == "batchnorm":
            modules.append(nn.BatchNorm2d(image[0]) if image else nn.BatchNorm1d(flat))
        elif head == "relu": modules.append(nn.ReLU())
        elif head == "leaky_relu": modules.append(nn.LeakyReLU())
        elif head == "sigmoid": modules.append(nn.Sigmoid())
        elif head == "tanh": modules.append(nn.Tanh())
        elif head == "dropout": modules.append(nn.Dropout(float(w[1])))
        else: raise SystemExit(f"layer {text!r} has no torch equivalent here")
    return nn.Sequential(*modules), first_image


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--checkpoint", required=True); a.add_argument("--input", required=True)
    a.add_argument("--lockstep", default=os.path.join(ROOT, ".build/release/lockstep"))
    a.add_argument("--tolerance", type=float, default=1e-4)
    args = a.parse_args()
    with safe_open(args.checkpoint, "pt") as f: meta = f.metadata()
    layers = json.loads(meta["lockstep.layers"]); data = json.loads(meta["lockstep.data"])
    model, image = build(layers, data["shape"])
    state = {k: v for k, v in load_file(args.checkpoint).items() if not k.startswith("optimizer.")}
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected tensor
    model.eval()
    x = np.load(args.input).astype(np.float64).reshape(-1, int(np.prod(data["shape"])))
    x = x * data.get("scale", 1)
    if data.get("mean") is not None: x = (x - np.array(data["mean"])) / np.array(data["std"])
    x = torch.from_numpy(x.astype(np.float32))
    if image: x = x.reshape(-1, *([1] + data["shape"] if len(data["shape"]) == 2 else data["shape"]))
    with torch.no_grad(): p = torch.softmax(model(x), 1).numpy()
    out = subprocess.run([args.lockstep, "predict", "--checkpoint", args.checkpoint, "--input", args.input],
                         check=True, capture_output=True, text=True).stdout
    rows = [l.split(",") for l in out.strip().split("\n")[1:]]
    ours = np.array([[float(v) for v in r[1:]] for r in rows])
    names = data.get("classNames")
    classes = [r[0] for r in rows]
    torch_classes = [names[i] if names else str(i) for i in p.argmax(1)]
    diff = float(np.abs(ours - p).max())
    same = classes == torch_classes
    print(f"strict load: ok ({len(state)} tensors into {len(model)} modules); {len(rows)} rows; "
          f"max |p_lockstep - p_torch| = {diff:.2e}; predictions {'identical' if same else 'DIFFER'}")
    sys.exit(0 if same and diff <= args.tolerance else 1)


if __name__ == "__main__":
    main()
