#!/usr/bin/env python3
"""Cross-checks Lockstep's training trajectory against PyTorch, step for step.

For each optimizer: build the nn.Sequential equivalent of configs/fashion-mlp.toml
(Linear 784→512, BatchNorm1d, ReLU, Linear 512→256, BatchNorm1d, ReLU, Linear 256→10),
initialize it with torch.manual_seed, export its state_dict to safetensors, let
`lockstep train --init-from … --no-shuffle --max-steps K --schedule constant` train
from it, train the same model K steps with torch.optim on the same batches (file
order, training mode), and compare every tensor of the state_dict (weights,
BatchNorm running statistics, num_batches_tracked) and the optimizer state.

A third run, torch in float64 from the same initialization, measures how far the
float32 torch run itself is from the exact trajectory. That is the yardstick for
tensors whose true gradient is exactly zero (see `noise_bound` below).

Exit status: 0 when every tensor passes, 1 on a mismatch, 2 when the inputs are
missing (no dataset, no binary, no torch).

    python3 tools/torch_trajectory.py [--lockstep .build/release/lockstep] [--steps 20]
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
except ImportError as e:  # pragma: no cover
    print(f"torch_trajectory: needs torch and safetensors ({e})", file=sys.stderr)
    sys.exit(2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The learning rates Lockstep is run with (and torch), per optimizer.
LEARNING_RATES = {
    "sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.01,
    "adadelta": 1.0, "rmsprop": 0.001, "adam": 0.001, "adamw": 0.001,
}
ALL = list(LEARNING_RATES)


def make_model(dtype=torch.float32):
    return nn.Sequential(
        nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(),
        nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Linear(256, 10)).to(dtype)


def make_optimizer(name, params, lr):
    """torch.optim with PyTorch's defaults; Lockstep's kinds map as MATH.md says."""
    o = torch.optim
    common = dict(foreach=False)  # the single-tensor code path (the CPU default anyway)
    if name == "sgd":
        return o.SGD(params, lr=lr, **common)
    if name == "momentum":
        return o.SGD(params, lr=lr, momentum=0.9, **common)
    if name == "nesterov":
        return o.SGD(params, lr=lr, momentum=0.9, nesterov=True, **common)
    if name == "adagrad":
        return o.Adagrad(params, lr=lr, **common)
    if name == "adadelta":
        return o.Adadelta(params, lr=lr, **common)
    if name == "rmsprop":
        return o.RMSprop(params, lr=lr, **common)
    if name == "adam":
        return o.Adam(params, lr=lr, **common)
    if name == "adamw":
        return o.AdamW(params, lr=lr, **common)
    raise ValueError(name)


def _idx(path, images):
    with gzip.open(path, "rb") as f:
        b = f.read()
    if images:
        n, r, c = (int.from_bytes(b[i:i + 4], "big") for i in (4, 8, 12))
        return np.frombuffer(b, np.uint8, offset=16).reshape(n, r * c)
    return np.frombuffer(b, np.uint8, offset=8).astype(np.int64)


def load_fashion(data_dir, samples):
    """The first `samples` training images, preprocessed as shared/anchors/fmnist.py does:
    pixels/255, standardized with the training set's single mean and (population) std.
    The mean and std are taken in float64 and the result rounded once to float32 (as
    Lockstep does); fmnist.py's float32 mean differs from this by ~1e-7 relative."""
    x = _idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"), True)
    y = _idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"), False)
    hist = np.bincount(x.ravel(), minlength=256).astype(np.float64)
    v = np.arange(256, dtype=np.float64) / 255
    n = hist.sum()
    mean = (hist * v).sum() / n
    std = np.sqrt((hist * (v - mean) ** 2).sum() / n)
    table = ((v - mean) / std).astype(np.float32)
    xs = x[:samples]
    # Sanity: the same numbers as fmnist.py's float32 pipeline, to rounding.
    ref = (xs.astype(np.float32) / 255.0 - np.float32(mean)) / np.float32(std)
    assert np.abs(table[xs] - ref).max() < 1e-5
    return torch.from_numpy(table[xs].copy()), torch.from_numpy(y[:samples].copy())


def torch_run(name, lr, init_state, X, Y, steps, batch, dtype):
    torch.manual_seed(0)  # nothing random remains (no dropout), but keep runs reproducible
    model = make_model(dtype)
    model.load_state_dict({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in init_state.items()}, strict=True)
    model.train()
    opt = make_optimizer(name, list(model.parameters()), lr)
    lossf = nn.CrossEntropyLoss()
    losses = []
    for s in range(steps):
        xb, yb = X[s * batch:(s + 1) * batch].to(dtype), Y[s * batch:(s + 1) * batch]
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, opt, losses


def flat_state(model, opt, key):
    """torch's per-parameter optimizer state `key`, flattened in model.parameters() order:
    the layout of Lockstep's parameter arena (layer by layer, weight then bias)."""
    parts = []
    for p in model.parameters():
        st = opt.state.get(p, {})
        if key not in st:
            return None
        parts.append(st[key].detach().reshape(-1).to(torch.float64))
    return torch.cat(parts)


def gauge_tensors(model):
    """Names of tensors with an exactly zero true gradient: the bias of a Linear followed
    directly by a training-mode BatchNorm (BN subtracts the batch mean, so the loss does
    not depend on that bias). Its computed gradient is pure float rounding (~1e-9), which
    adaptive optimizers (Adagrad, RMSprop, Adam…) divide by its own magnitude, so the
    bias random-walks by up to ±lr per step in any float32 implementation. The running
    mean of that BatchNorm inherits the walk."""
    names = []
    mods = list(model)
    for i, (a, b) in enumerate(zip(mods, mods[1:])):
        if isinstance(a, nn.Linear) and isinstance(b, nn.BatchNorm1d):
            names += [f"{i}.bias", f"{i + 1}.running_mean"]
    return set(names)


def compare(ref, got, floor):
    ref = ref.detach().to(torch.float64)
    got = got.detach().to(torch.float64)
    d = (got - ref).abs()
    scale = ref.abs().max().item()
    max_abs = d.max().item() if d.numel() else 0.0
    rel = max_abs / scale if scale > 0 else max_abs
    elem = (d / ref.abs().clamp_min(floor)).max().item() if d.numel() else 0.0
    return max_abs, rel, elem


def run_lockstep(args, name, lr, init_path, out_path, workdir):
    cmd = [args.lockstep, "train", "--config", args.config, "--init-from", init_path, "--no-shuffle",
           "--max-steps", str(args.steps), "--optimizer", name, "--lr", repr(lr), "--save", out_path,
           "--threads", str(args.threads), "--schedule", "constant", "--batch-size", str(args.batch),
           "--data-dir", args.data_dir, "--metrics", os.path.join(workdir, f"{name}.jsonl")]
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=args.timeout)
    if r.returncode != 0:
        print(f"lockstep failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}", file=sys.stderr)
        return False, time.time() - t0
    return True, time.time() - t0


def check(args, name, X, Y, workdir):
    lr = LEARNING_RATES[name] if args.lr is None else args.lr
    torch.manual_seed(args.seed)
    init_model = make_model()
    init_state = {k: v.detach().clone().contiguous() for k, v in init_model.state_dict().items()}
    init_path = os.path.join(workdir, f"{name}.init.safetensors")
    out_path = os.path.join(workdir, f"{name}.lockstep.safetensors")
    save_file(init_state, init_path, metadata={"format": "pt"})

    ok, secs = run_lockstep(args, name, lr, init_path, out_path, workdir)
    row = dict(name=name, lr=lr, ok=False, notes=[], lockstep_s=secs)
    if not ok:
        row["notes"].append("lockstep train failed")
        return row

    model32, opt32, losses = torch_run(name, lr, init_state, X, Y, args.steps, args.batch, torch.float32)
    model64, _, _ = torch_run(name, lr, init_state, X, Y, args.steps, args.batch, torch.float64)
    row["loss"] = (losses[0], losses[-1])

    saved = load_file(out_path)
    with safe_open(out_path, framework="pt") as f:
        meta = f.metadata() or {}
    ref = model32.state_dict()
    exact = model64.state_dict()
    gauge = gauge_tensors(model32)

    # 1. Every tensor of the state_dict.
    worst = dict(abs=0.0, rel=0.0, elem=0.0, tensor="", gauge_rel=0.0, gauge_ratio=0.0, gauge_tensor="")
    per_tensor = []
    passed = True
    for k, t in ref.items():
        if k not in saved:
            row["notes"].append(f"{k} missing from Lockstep's checkpoint")
            passed = False
            continue
        g = saved[k]
        if tuple(g.shape) != tuple(t.shape):
            row["notes"].append(f"{k}: shape {tuple(g.shape)} vs torch {tuple(t.shape)}")
            passed = False
            continue
        if not t.is_floating_point():
            if g.dtype != t.dtype or not torch.equal(g, t):
                row["notes"].append(f"{k}: {g.tolist()} ({g.dtype}) vs torch {t.tolist()} ({t.dtype})")
                passed = False
            continue
        a, r, e = compare(t, g, args.floor)
        # How far float32 torch itself is from the float64 trajectory: the rounding noise floor.
        _, noise, _ = compare(exact[k], t, args.floor)
        _, ls_exact, _ = compare(exact[k], g, args.floor)
        per_tensor.append((k, a, r, e, noise, ls_exact))
        if k in gauge:
            # Zero-gradient directions: compare against the rounding noise floor, not 1e-4.
            ratio = ls_exact / max(noise, args.tol)
            if r > worst["gauge_rel"]:
                worst.update(gauge_rel=r, gauge_tensor=k)
            worst["gauge_ratio"] = max(worst["gauge_ratio"], ratio)
            if r > args.tol and ratio > args.noise_factor:
                row["notes"].append(f"{k}: rel {r:.2e}, Lockstep is {ratio:.1f}x further from float64 than torch f32")
                passed = False
            continue
        if r > worst["rel"]:
            worst.update(rel=r, tensor=k)
        worst["abs"] = max(worst["abs"], a)
        worst["elem"] = max(worst["elem"], e)
        if r > args.tol:
            row["notes"].append(f"{k}: max|Δ| {a:.2e}, rel {r:.2e} > {args.tol:g} (torch f32 vs f64: {noise:.2e})")
            passed = False
    extra = sorted(set(saved) - set(ref) - {k for k in saved if k.startswith("optimizer.")})
    if extra:
        row["notes"].append(f"unexpected tensors in Lockstep's checkpoint: {extra}")
        passed = False
    row.update(worst)
    row["per_tensor"] = per_tensor

    # 2. Lockstep's checkpoint loads into torch with strict=True.
    probe = make_model()
    try:
        probe.load_state_dict({k: v for k, v in saved.items() if not k.startswith("optimizer.")}, strict=True)
        row["strict"] = "ok"
        # Same eval-mode function as the torch-trained model on the first batch.
        probe.eval(); model32.eval()
        with torch.no_grad():
            xb = X[:args.batch]
            row["eval_logits_rel"] = compare(model32(xb), probe(xb), args.floor)[1]
    except Exception as e:  # noqa: BLE001
        row["strict"] = f"FAILED: {str(e)[:200]}"
        row["notes"].append("load_state_dict(strict=True) failed")
        passed = False

    # 3. Optimizer state and step counters.
    opt_rel = 0.0
    names = [k[len("optimizer."):] for k in saved if k.startswith("optimizer.")]
    torch_keys = sorted({key for st in opt32.state.values() for key in st if key != "step"})
    if sorted(names) != torch_keys:
        row["notes"].append(f"optimizer state names {sorted(names)} vs torch {torch_keys}")
        passed = False
    for n in names:
        t = flat_state(model32, opt32, n)
        if t is None:
            continue
        g = saved["optimizer." + n]
        if g.numel() != t.numel():
            row["notes"].append(f"optimizer.{n}: {g.numel()} floats vs torch {t.numel()}")
            passed = False
            continue
        _, r, _ = compare(t, g, args.floor)
        # Zero-gradient entries make the state's relative size meaningless there only for
        # state that *is* the noise (Adagrad's sum, …); it is tiny, so max|θ| scaling is fine.
        opt_rel = max(opt_rel, r)
        if r > args.tol:
            row["notes"].append(f"optimizer.{n}: rel {r:.2e} > {args.tol:g}")
            passed = False
    row["opt_state"] = ",".join(names) if names else "—"
    row["opt_rel"] = opt_rel
    steps_meta = (meta.get("lockstep.global_step"), meta.get("lockstep.optimizer_step"))
    if steps_meta != (str(args.steps), str(args.steps)):
        row["notes"].append(f"metadata step counters {steps_meta}, expected {args.steps}")
        passed = False
    for st in opt32.state.values():
        if "step" in st and int(st["step"]) != args.steps:
            row["notes"].append(f"torch step {int(st['step'])}")
        break
    row["ok"] = passed
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lockstep", default=os.path.join(ROOT, ".build/release/lockstep"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--optimizers", default=",".join(ALL), help="comma-separated subset of " + ",".join(ALL))
    ap.add_argument("--lr", type=float, default=None, help="one learning rate for all (default: per optimizer)")
    ap.add_argument("--config", default=os.path.join(ROOT, "configs/fashion-mlp.toml"))
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed of the initialization")
    ap.add_argument("--threads", type=int, default=1, help="threads of Lockstep and of torch")
    ap.add_argument("--tol", type=float, default=1e-4, help="max |Δ|/max|θ| per tensor")
    ap.add_argument("--floor", type=float, default=1e-3, help="floor of |θ| in the elementwise relative difference")
    ap.add_argument("--noise-factor", type=float, default=4.0,
                    help="zero-gradient tensors: Lockstep's distance to the float64 run may be this many times torch f32's")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--workdir", default=None, help="keep the safetensors files here (default: a temporary directory)")
    ap.add_argument("--verbose", action="store_true", help="print every tensor's differences")
    args = ap.parse_args()

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    for n in names:
        if n not in LEARNING_RATES:
            ap.error(f"unknown optimizer {n}; use {','.join(ALL)}")
    if not (os.path.isfile(args.lockstep) and os.access(args.lockstep, os.X_OK)):
        print(f"torch_trajectory: {args.lockstep} is not an executable; run `swift build -c release`", file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz")):
        print(f"torch_trajectory: no Fashion-MNIST in {args.data_dir}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    X, Y = load_fashion(args.data_dir, args.steps * args.batch)
    if X.shape[0] < args.steps * args.batch:
        print("torch_trajectory: too few training samples for the steps asked", file=sys.stderr)
        return 2

    workdir = args.workdir or tempfile.mkdtemp(prefix="torch-trajectory-")
    os.makedirs(workdir, exist_ok=True)
    rows = []
    for n in names:
        row = check(args, n, X, Y, workdir)
        rows.append(row)
        status = "ok" if row["ok"] else "MISMATCH"
        print(f"{n}: {status}" + "".join(f"\n  - {x}" for x in row["notes"]), flush=True)
        if args.verbose:
            for k, a, r, e, noise, lse in row.get("per_tensor", []):
                print(f"    {k:22s} max|Δ| {a:.2e} rel {r:.2e} elem {e:.2e} | torch f32-f64 {noise:.2e} lockstep-f64 {lse:.2e}")

    print()
    print(f"Lockstep vs torch {torch.__version__}, {args.steps} steps of batch {args.batch}, file order, "
          f"seed {args.seed}, constant LR; relative = max|Δ|/max|θ| per tensor, tolerance {args.tol:g}.")
    print()
    print("| optimizer | lr | loss step 1 → K | max abs Δ | max rel Δ (tensor) | max elementwise rel (floor "
          f"{args.floor:g}) | zero-grad biases: rel Δ, Lockstep/torch-f32 error vs f64 | optimizer state (max rel Δ) "
          "| load_state_dict strict | eval logits rel Δ | result |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "rel" not in r:
            print(f"| {r['name']} | {r['lr']:g} | — | — | — | — | — | — | — | — | FAIL: {'; '.join(r['notes'])} |")
            continue
        lo = r.get("loss", (float('nan'),) * 2)
        print(f"| {r['name']} | {r['lr']:g} | {lo[0]:.4f} → {lo[1]:.4f} | {r['abs']:.2e} | {r['rel']:.2e} ({r['tensor']}) "
              f"| {r['elem']:.2e} | {r['gauge_rel']:.2e}, {r['gauge_ratio']:.2f}× | {r['opt_state']} ({r['opt_rel']:.2e}) "
              f"| {r.get('strict', '—')} | {r.get('eval_logits_rel', float('nan')):.2e} | {'pass' if r['ok'] else 'FAIL'} |")
    failed = [r["name"] for r in rows if not r["ok"]]
    print()
    print("all pass" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
