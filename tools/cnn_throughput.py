#!/usr/bin/env python3
"""Fashion-MNIST CNN throughput: Lockstep against PyTorch, side by side in one run.

The model is configs/fashion-cnn.toml's (conv 32 → BN2d → ReLU → maxpool → conv 64 →
BN2d → ReLU → maxpool → flatten → linear 128 → ReLU → linear 10, SGD momentum 0.9,
batch 64 per worker). Two comparisons, each in alternating rounds, medians of
training samples/s over a fixed number of steps after a warm-up:

  single: lockstep train (1 process × 2 threads)      vs torch (1 process × 2 threads, oneDNN)
  ddp:    lockstep train --workers 2 (× 1 thread; ZeroMQ over loopback TCP, and --transport shm)
                                                        vs torch DDP gloo (2 processes × 1 thread, exact CPU SyncBN)

    python3 tools/cnn_throughput.py [--rounds 3] [--steps 150] [--lockstep .build/release/lockstep]
Needs python3 with torch (tools/anchor_venv.sh makes .build/anchor-venv) and Debian's dataset-fashion-mnist.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(ROOT, "..", "shared", "anchors")


def torch_worker(rank, world, threads, steps, warmup, batch, port, queue):
    import numpy as np, torch, torch.nn as nn, torch.distributed as dist, gzip
    torch.set_num_threads(threads); torch.manual_seed(0)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    d = "/usr/share/datasets/fashion-mnist"
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")) as f: raw = f.read()
    x = np.frombuffer(raw, np.uint8, offset=16).astype(np.float32).reshape(-1, 1, 28, 28) / 255
    x = (x - x.mean()) / x.std()
    with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz")) as f: y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)

    class SyncBN2dFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias, eps):
            c = x.shape[1]; n = torch.tensor([float(x.numel() // c)])
            stats = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), n]); dist.all_reduce(stats)
            total = stats[-1]; mean = stats[:c] / total; var = (stats[c:2 * c] / total - mean * mean).clamp_min(0)
            invstd = torch.rsqrt(var + eps); xhat = (x - mean[None, :, None, None]) * invstd[None, :, None, None]
            ctx.save_for_backward(xhat, invstd, weight); ctx.total = total
            return xhat * weight[None, :, None, None] + bias[None, :, None, None]
        @staticmethod
        def backward(ctx, gy):
            xhat, invstd, weight = ctx.saved_tensors
            sdy = gy.sum((0, 2, 3)); sdyx = (gy * xhat).sum((0, 2, 3))
            red = torch.cat([sdy, sdyx]); dist.all_reduce(red); c = sdy.numel()
            gx = (weight * invstd)[None, :, None, None] * (gy - red[:c][None, :, None, None] / ctx.total
                                                          - xhat * red[c:][None, :, None, None] / ctx.total)
            return gx, sdyx, sdy, None

    class SyncBN2d(nn.BatchNorm2d):
        def forward(self, x):
            if world == 1 or not self.training: return super().forward(x)
            return SyncBN2dFn.apply(x, self.weight, self.bias, self.eps)

    bn = SyncBN2d if world > 1 else nn.BatchNorm2d
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), bn(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), bn(64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    if world > 1: model = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9); loss = nn.CrossEntropyLoss()
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            if world > 1: dist.barrier()
            start = time.perf_counter()
        i = (step * world + rank) * batch % (X.shape[0] - batch)
        idx = perm[i:i + batch]
        opt.zero_grad(set_to_none=True); loss(model(X[idx]), Y[idx]).backward(); opt.step()
    if world > 1: dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0: queue.put(steps * batch * world / seconds)
    if world > 1: dist.destroy_process_group()


def torch_run(world, threads, steps, warmup, batch):
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn"); q = ctx.Queue(); port = 29700 + os.getpid() % 200
    ps = [ctx.Process(target=torch_worker, args=(r, world, threads, steps, warmup, batch, port, q)) for r in range(world)]
    for p in ps: p.start()
    value = q.get(timeout=900)
    for p in ps: p.join()
    return value


def lockstep_run(exe, workers, threads, steps, warmup, extra=()):
    """Samples/s of `steps` steps after `warmup`: two runs (warmup+steps and warmup), their time difference."""
    def timed(n):
        with tempfile.TemporaryDirectory() as d:
            m = os.path.join(d, "m.jsonl")
            cmd = [exe, "train", "--config", os.path.join(ROOT, "configs/fashion-cnn.toml"), "--max-steps", str(n),
                   "--threads", str(threads), "--metrics", m]
            if workers > 1: cmd += ["--workers", str(workers)]
            cmd += list(extra)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            final = [json.loads(l) for l in open(m) if '"final"' in l][-1]
            return final["steps"] * 64 * workers / final["samples_per_second"]
    return steps * 64 * workers / (timed(warmup + steps) - timed(warmup))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--rounds", type=int, default=3); a.add_argument("--steps", type=int, default=150)
    a.add_argument("--warmup", type=int, default=20)
    a.add_argument("--lockstep", default=os.path.join(ROOT, ".build/release/lockstep"))
    a.add_argument("--only", choices=["single", "ddp"], default=None)
    args = a.parse_args()
    rows = []
    setups = (("single", 1, 2, [()]), ("ddp", 2, 1, [(), ("--transport", "shm")]))
    for name, workers, threads, variants in setups:
        if args.only and name != args.only: continue
        ours, theirs = [[] for _ in variants], []
        for r in range(args.rounds):
            for i, extra in enumerate(variants):
                ours[i].append(lockstep_run(args.lockstep, workers, threads, args.steps, args.warmup, extra))
            theirs.append(torch_run(workers, threads, args.steps, args.warmup, 64))
            print(f"{name} round {r + 1}: lockstep " + ", ".join(f"{o[-1]:.0f}" for o in ours)
                  + f" samples/s, torch {theirs[-1]:.0f} samples/s", flush=True)
        for i, extra in enumerate(variants):
            rows.append((name + (" " + " ".join(extra) if extra else ""), workers, threads,
                         statistics.median(ours[i]), statistics.median(theirs)))
    print("\n| setup | processes × threads | Lockstep samples/s | PyTorch samples/s | ratio |")
    print("|---|---|---|---|---|")
    for name, w, t, o, p in rows:
        ref = "torch 1 process (oneDNN)" if w == 1 else "torch DDP gloo"
        print(f"| {name} vs {ref} | {w} × {t} | {o:.0f} | {p:.0f} | {o / p:.2f}× |")

if __name__ == "__main__":
    main()
