#!/usr/bin/env python3
"""Cross-checks Lockstep's training trajectory against PyTorch, step for step.

For each optimizer: build the nn.Sequential equivalent of configs/fashion-mlp.toml
(Linear 784→512, BatchNorm1d, ReLU, Linear 512→256, BatchNorm1d, ReLU, Linear 256→10),
initialize it with torch.manual_seed, export its state_dict to safetensors, and let
`lockstep train --init-from … --no-shuffle --schedule constant` train from it on the
batches in file order: 1 step, K-1 steps, then `--resume` for step K. Then:

1. Step 1 and step K: one torch.optim step from the same state (the initialization;
   Lockstep's checkpoint after K-1 steps with its optimizer state), compared with
   Lockstep's checkpoint on every tensor of the state_dict (weights, BatchNorm running
   statistics, num_batches_tracked) and every optimizer state tensor, strictly
   (max|Δ|/max|θ| ≤ 1e-4). Left out, and only bounded, are the gradient entries that
   float32 rounding decides (`ill_conditioned_masks`): the adaptive optimizers turn
   those into ±lr moves whose sign is rounding, in torch as in Lockstep.
2. K steps free-running, compared with torch float32 and torch float64 (the exact
   trajectory). Over 20 steps a ReLU input within rounding of 0, or a rounding-decided
   gradient entry under Adagrad/RMSprop/Adam, sends any float32 run off the exact
   trajectory by far more than 1e-4 (torch f32 vs torch f64 shows how far); such a
   tensor passes when Lockstep is within 1e-4 of either torch run, or no further from
   the exact run than a few times torch f32 is.
3. Lockstep's final checkpoint loads with `load_state_dict(strict=True)` (optimizer.*
   keys aside), names, shapes, dtypes and step counters match torch's.

Exit status: 0 when everything passes, 1 on a mismatch, 2 when the inputs are
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
    """torch.optim with PyTorch's defaults; Lockstep's kinds map as docs/MATH.md, "Optimizers", says."""
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


def torch_one_step(name, lr, start, opt_start, step_before, xb, yb, dtype):
    """One torch.optim step from `start` (a state_dict) and, when resuming, Lockstep's flat optimizer
    state `opt_start` after `step_before` steps. Returns the model, the optimizer and the gradients."""
    model = make_model(dtype)
    model.load_state_dict({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in start.items()}, strict=True)
    model.train()
    params = list(model.parameters())
    opt = make_optimizer(name, params, lr)
    if opt_start:
        offset = 0
        for p in params:
            st = {}
            if name not in ("sgd", "momentum", "nesterov"):
                st["step"] = torch.tensor(float(step_before))
            for key, flat in opt_start.items():
                st[key] = flat[offset:offset + p.numel()].reshape(p.shape).to(dtype).clone()
            opt.state[p] = st
            offset += p.numel()
    opt.zero_grad(set_to_none=True)
    nn.CrossEntropyLoss()(model(xb.to(dtype)), yb).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    return model, opt, grads


def ill_conditioned_masks(model, xb, g32, g64, factor=1000.0):
    """Entries of the gradient that float32 rounding decides, per parameter name.

    BatchNorm in training mode subtracts the batch mean, so the loss does not depend on
    the bias of a Linear right before it, nor on a weight column whose input is constant
    over the batch (Fashion-MNIST has border pixels that are 0 in every image of a
    batch): their true gradient is exactly 0 and the computed one is rounding (~1e-9).
    Other entries are nearly so (a pixel set in one image of the batch). Adagrad,
    RMSprop, Adam and AdamW divide the gradient by its own magnitude (plus eps), so such
    an entry moves by up to ~lr in a direction set by rounding, in torch as in any
    float32 implementation. Masked: those structural zeros, and every entry whose
    float64 gradient is below `factor` × the largest float32 rounding error |g32-g64|
    of its tensor."""
    masks = {}
    mods = list(model)
    for i, (a, b) in enumerate(zip(mods, mods[1:])):
        if isinstance(a, nn.Linear) and isinstance(b, nn.BatchNorm1d):
            masks[f"{i}.bias"] = torch.ones(a.out_features, dtype=torch.bool)
            if i == 0:
                const = (xb == xb[0]).all(0)
                masks[f"{i}.weight"] = const.unsqueeze(0).expand(a.out_features, -1).clone()
    for n, g in g64.items():
        noise = (g32[n].double() - g).abs().max()
        small = g.abs() < factor * noise
        masks[n] = masks[n] | small if n in masks else small
    return masks


def compare(ref, got, floor, mask=None):
    """(max|Δ|, max|Δ|/max|θ|, max elementwise |Δ|/max(|θ|, floor)), over the entries not in `mask`."""
    ref = ref.detach().to(torch.float64).reshape(-1)
    got = got.detach().to(torch.float64).reshape(-1)
    if mask is not None:
        keep = ~mask.reshape(-1)
        ref, got = ref[keep], got[keep]
    if ref.numel() == 0:
        return 0.0, 0.0, 0.0
    d = (got - ref).abs()
    scale = ref.abs().max().item()
    max_abs = d.max().item()
    rel = max_abs / scale if scale > 0 else max_abs
    elem = (d / ref.abs().clamp_min(floor)).max().item()
    return max_abs, rel, elem


def run_lockstep(args, name, lr, out_path, extra):
    cmd = [args.lockstep, "train", "--config", args.config, "--no-shuffle", "--optimizer", name, "--lr", repr(lr),
           "--save", out_path, "--threads", str(args.threads), "--schedule", "constant",
           "--batch-size", str(args.batch), "--data-dir", args.data_dir] + extra
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=args.timeout)
    if r.returncode != 0:
        print(f"lockstep failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}", file=sys.stderr)
        return False
    return True


def read_checkpoint(path):
    saved = load_file(path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    return saved, meta


def structural_checks(row, saved, meta, model, opt, steps):
    """Names, shapes, dtypes, step counters, strict loading. Appends to row['notes']; returns ok."""
    ok = True
    ref = model.state_dict()
    for k, t in ref.items():
        if k not in saved:
            row["notes"].append(f"{k} missing from Lockstep's checkpoint"); ok = False; continue
        g = saved[k]
        if tuple(g.shape) != tuple(t.shape):
            row["notes"].append(f"{k}: shape {tuple(g.shape)} vs torch {tuple(t.shape)}"); ok = False; continue
        if not t.is_floating_point() and (g.dtype != t.dtype or not torch.equal(g, t)):
            row["notes"].append(f"{k}: {g.tolist()} ({g.dtype}) vs torch {t.tolist()} ({t.dtype})"); ok = False
    extra = sorted(k for k in set(saved) - set(ref) if not k.startswith("optimizer."))
    if extra:
        row["notes"].append(f"unexpected tensors in Lockstep's checkpoint: {extra}"); ok = False
    names = sorted(k[len("optimizer."):] for k in saved if k.startswith("optimizer."))
    torch_keys = sorted({key for st in opt.state.values() for key in st if key != "step"})
    if names != torch_keys:
        row["notes"].append(f"optimizer state {names} vs torch's {torch_keys}"); ok = False
    counters = (meta.get("lockstep.global_step"), meta.get("lockstep.optimizer_step"))
    if counters != (str(steps), str(steps)):
        row["notes"].append(f"metadata step counters {counters}, expected {steps}"); ok = False
    probe = make_model()
    try:
        probe.load_state_dict({k: v for k, v in saved.items() if not k.startswith("optimizer.")}, strict=True)
    except Exception as e:  # noqa: BLE001
        row["notes"].append(f"load_state_dict(strict=True) failed: {str(e)[:300]}"); ok = False
        return ok, None
    return ok, probe


def one_step_check(args, row, label, name, lr, start, opt_start, step_before, X, Y, got):
    """Strict comparison of Lockstep's step `step_before + 1` (checkpoint `got`) with torch's step from
    the same state; the entries float32 rounding decides are left out and only bounded."""
    b = args.batch
    xb, yb = X[step_before * b:(step_before + 1) * b], Y[step_before * b:(step_before + 1) * b]
    m32, o32, g32 = torch_one_step(name, lr, start, opt_start, step_before, xb, yb, torch.float32)
    _, _, g64 = torch_one_step(name, lr, start, opt_start, step_before, xb, yb, torch.float64)
    masks = ill_conditioned_masks(m32, xb, g32, g64)
    rel, opt_rel, masked_abs, masked, total = 0.0, 0.0, 0.0, 0, 0
    ok = True
    for k, t in m32.state_dict().items():
        if k not in got or not t.is_floating_point() or got[k].shape != t.shape:
            continue
        mask = masks.get(k)
        _, r, _ = compare(t, got[k], args.floor, mask)
        rel = max(rel, r)
        total += t.numel()
        if r > args.tol:
            row["notes"].append(f"{label}: {k} rel {r:.2e} > {args.tol:g}"); ok = False
        if mask is not None and mask.any():
            masked += int(mask.sum())
            masked_abs = max(masked_abs, compare(t, got[k], args.floor, ~mask)[0])
    flat_mask = torch.cat([masks.get(n, torch.zeros(p.shape, dtype=torch.bool)).reshape(-1)
                           for n, p in m32.named_parameters()])
    for k in [k for k in got if k.startswith("optimizer.")]:
        t = flat_state(m32, o32, k[len("optimizer."):])
        if t is None or t.numel() != got[k].numel():
            row["notes"].append(f"{label}: {k} has {got[k].numel()} floats, torch {None if t is None else t.numel()}")
            ok = False; continue
        _, r, _ = compare(t, got[k], args.floor, flat_mask)
        opt_rel = max(opt_rel, r)
        if r > args.tol:
            row["notes"].append(f"{label}: {k} rel {r:.2e} > {args.tol:g}"); ok = False
    if masked_abs > 20 * lr:
        row["notes"].append(f"{label}: rounding-decided entries moved {masked_abs:.2e} apart (> 20·lr)"); ok = False
    return ok, dict(rel=rel, opt_rel=opt_rel, masked_abs=masked_abs, masked=masked / max(total, 1))


def check(args, name, X, Y, workdir):
    lr = LEARNING_RATES[name] if args.lr is None else args.lr
    K = args.steps
    torch.manual_seed(args.seed)
    init_state = {k: v.detach().clone().contiguous() for k, v in make_model().state_dict().items()}
    init_path = os.path.join(workdir, f"{name}.init.safetensors")
    save_file(init_state, init_path, metadata={"format": "pt"})
    row = dict(name=name, lr=lr, ok=False, notes=[])
    passed = True
    path = lambda s: os.path.join(workdir, f"{name}.step{s}.safetensors")

    # Lockstep: 1 step; K-1 steps; then --resume for step K (K steps in all).
    if not run_lockstep(args, name, lr, path(1), ["--init-from", init_path, "--max-steps", "1"]):
        row["notes"].append("lockstep train (1 step) failed"); return row
    if K > 1:
        if not run_lockstep(args, name, lr, path(K - 1), ["--init-from", init_path, "--max-steps", str(K - 1)]):
            row["notes"].append(f"lockstep train ({K - 1} steps) failed"); return row
        if not run_lockstep(args, name, lr, path(K), ["--resume", path(K - 1), "--max-steps", str(K)]):
            row["notes"].append(f"lockstep train --resume (step {K}) failed"); return row

    # 1. Step 1 from the same initialization.
    got1, meta1 = read_checkpoint(path(1))
    m1, o1, _ = torch_run(name, lr, init_state, X, Y, 1, args.batch, torch.float32)
    ok, _ = structural_checks(row, got1, meta1, m1, o1, 1)
    passed &= ok
    ok, row["step1"] = one_step_check(args, row, "step 1", name, lr, init_state, None, 0, X, Y, got1)
    passed &= ok

    # 2. Step K from Lockstep's own state after K-1 steps (model and optimizer state).
    got, meta = read_checkpoint(path(K))
    if K > 1:
        before, _ = read_checkpoint(path(K - 1))
        start = {k: v for k, v in before.items() if not k.startswith("optimizer.")}
        opt_start = {k[len("optimizer."):]: v for k, v in before.items() if k.startswith("optimizer.")}
        ok, row["stepK"] = one_step_check(args, row, f"step {K}", name, lr, start, opt_start, K - 1, X, Y, got)
        passed &= ok
    else:
        row["stepK"] = row["step1"]

    # 3. K steps free-running, against torch f32 and, as the exact yardstick, torch f64.
    m32, o32, losses = torch_run(name, lr, init_state, X, Y, K, args.batch, torch.float32)
    m64, o64, _ = torch_run(name, lr, init_state, X, Y, K, args.batch, torch.float64)
    row["loss"] = (losses[0], losses[-1])
    ok, probe = structural_checks(row, got, meta, m32, o32, K)
    passed &= ok
    if probe is not None:
        probe.eval(); m32.eval()
        with torch.no_grad():
            row["eval_logits_rel"] = compare(m32(X[:args.batch]), probe(X[:args.batch]), args.floor)[1]
        m32.train()
        row["strict"] = "ok"
    else:
        row["strict"] = "FAILED"
    pairs = [(k, t, m64.state_dict()[k], got.get(k)) for k, t in m32.state_dict().items() if t.is_floating_point()]
    for k in [k for k in got if k.startswith("optimizer.")]:
        n = k[len("optimizer."):]
        t32, t64 = flat_state(m32, o32, n), flat_state(m64, o64, n)
        if t32 is not None and t32.numel() == got[k].numel():
            pairs.append((k, t32, t64, got[k]))
    kinds = {"strict": 0, "f64": 0, "rounding": 0}
    worst = dict(rel32=0.0, rel64=0.0, noise=0.0, tensor="")
    per_tensor = []
    for k, t32, t64, g in pairs:
        if g is None or g.shape != t32.shape:
            continue
        a, r32, e = compare(t32, g, args.floor)
        _, r64, _ = compare(t64, g, args.floor)
        _, noise, _ = compare(t64, t32, args.floor)
        per_tensor.append((k, a, r32, e, r64, noise))
        if r32 > worst["rel32"]:
            worst.update(rel32=r32, tensor=k)
        worst["rel64"] = max(worst["rel64"], r64)
        worst["noise"] = max(worst["noise"], noise)
        if r32 <= args.tol:
            kinds["strict"] += 1
        elif r64 <= args.tol:
            kinds["f64"] += 1       # torch f32 left the exact trajectory (a ReLU kink decided by rounding); Lockstep did not
        elif noise > args.tol and r64 <= args.noise_factor * noise:
            kinds["rounding"] += 1  # torch f32 is itself this far from exact: the trajectory amplifies rounding
        else:
            row["notes"].append(f"{K} steps: {k} rel {r32:.2e} vs torch f32, {r64:.2e} vs f64 (torch f32 vs f64: {noise:.2e})")
            passed = False
    row.update(worst)
    row["kinds"] = kinds
    row["per_tensor"] = per_tensor
    row["opt_state"] = ",".join(sorted(k[len("optimizer."):] for k in got if k.startswith("optimizer."))) or "—"
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
                    help="rounding-limited tensors: Lockstep's distance to the float64 run may be this many times torch f32's")
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
            for k, a, r32, e, r64, noise in row.get("per_tensor", []):
                print(f"    {k:22s} max|Δ| {a:.2e} rel {r32:.2e} elem {e:.2e} | vs f64 {r64:.2e} | torch f32 vs f64 {noise:.2e}")

    print()
    print(f"Lockstep vs torch {torch.__version__}: Fashion-MNIST, batch {args.batch}, file order, init torch.manual_seed({args.seed}), "
          f"constant LR, {args.threads} thread(s). rel = max|Δ| / max|θ| per tensor (worst tensor shown); tolerance {args.tol:g}.")
    print(f"Step 1 / step {args.steps}: one torch step from the same state (the initialization / Lockstep's checkpoint after "
          f"{args.steps - 1} steps, with its optimizer state), strict on every tensor and on the optimizer state, except the "
          "gradient entries float32 rounding decides (share masked; their max |Δ| shown). "
          f"{args.steps} steps free-running: a tensor passes strictly vs torch f32, or vs torch f64 when torch f32 left the exact "
          f"trajectory, or (rounding-limited) within {args.noise_factor:g}x torch f32's own distance to f64.")
    print()
    K = args.steps
    print(f"| optimizer | lr | step 1: rel Δ model / opt. state | step {K} (resumed): rel Δ model / opt. state | masked share, max abs Δ there "
          f"| loss 1 → {K} | {K} steps: rel Δ vs torch f32 (tensor) | vs torch f64 | torch f32 vs f64 "
          "| tensors strict / f64 / rounding-limited | optimizer state | load_state_dict(strict) | eval logits rel Δ | result |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "kinds" not in r:
            print(f"| {r['name']} | {r['lr']:g} |" + " — |" * 11 + f" FAIL: {'; '.join(r['notes'])} |")
            continue
        lo, kd, s1, sk = r["loss"], r["kinds"], r["step1"], r["stepK"]
        print(f"| {r['name']} | {r['lr']:g} | {s1['rel']:.1e} / {s1['opt_rel']:.1e} | {sk['rel']:.1e} / {sk['opt_rel']:.1e} "
              f"| {100 * max(s1['masked'], sk['masked']):.1f}%, {max(s1['masked_abs'], sk['masked_abs']):.1e} "
              f"| {lo[0]:.4f} → {lo[1]:.4f} | {r['rel32']:.1e} ({r['tensor']}) | {r['rel64']:.1e} | {r['noise']:.1e} "
              f"| {kd['strict']} / {kd['f64']} / {kd['rounding']} | {r['opt_state']} | {r.get('strict', '—')} "
              f"| {r.get('eval_logits_rel', float('nan')):.1e} | {'pass' if r['ok'] else 'FAIL'} |")
    failed = [r["name"] for r in rows if not r["ok"]]
    print()
    print("all pass" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
