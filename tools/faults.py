#!/usr/bin/env python3
"""Fault injection for Lockstep: real processes, real signals, real files.

Runs `lockstep train --workers 3` jobs (loopback) and injects faults at random
moments: SIGKILL a worker, SIGSTOP one, SIGKILL the coordinator, SIGKILL the
whole job and resume, corrupt the newest checkpoint, fill the checkpoint disk
(a small tmpfs; root), take the coordinator's link down and up (a network
namespace; root). Prints one table: faults injected, detected within bound,
recovered, steps lost, final hash equal to an undisturbed run's.

  tools/faults.py                 # 60 faults (about 13 minutes on 2 cores)
  tools/faults.py --rounds 1      # one trial of each kind (about 2 minutes)
  tools/faults.py --json out.json

Exit status 0 only with no hang, no lost checkpoint and every recovery as expected.
"""
import argparse, json, os, random, re, shutil, signal, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
LOCKSTEP = os.path.join(BIN, "lockstep")
CONFIG = """[model]
layers = ["linear 256", "batchnorm", "relu", "linear 10"]
[data]
dataset = "synthetic"
synthetic_train = 96000
synthetic_test = 2000
synthetic_features = 256
synthetic_classes = 10
[train]
epochs = 2
batch_size = 64
threads = 1
"""
HANG = 240  # seconds a job may take before it counts as hung


class Job:
    """A process whose merged output is collected line by line, with arrival times."""

    def __init__(self, args, **kw):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
        self.lines = []  # (time, line)
        self.eof = False  # all its output has been read
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append((time.time(), line.rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pattern, timeout, after=0.0):
        """Arrival time of the first line matching `pattern` that arrived after `after`, or None."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if t >= after and rx.search(line):
                        return t
                left = end - time.time()
                if left <= 0 or self.eof:
                    return None
                self.cond.wait(min(left, 0.1))

    def match(self, pattern, after=0.0):
        rx = re.compile(pattern)
        with self.cond:
            for t, line in self.lines:
                if t >= after:
                    m = rx.search(line)
                    if m:
                        return m
        return None

    def finish(self, timeout=HANG):
        """Exit status, or None after killing a job that ran past `timeout` (a hang)."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(self.p.pid)
            self.p.wait()
            return None
        time.sleep(0.2)
        return rc

    def text(self):
        with self.cond:
            return "\n".join(l for _, l in self.lines)


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(l.split(None, 1)[0]), l.split(None, 1)[1]) for l in out.strip().splitlines() if l.strip()]


def kill_tree(pid):
    for c, _ in children(pid):
        kill_tree(c)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def worker_pid(job, rank):
    for pid, args in children(job.p.pid):
        if "lockstep-worker" in args and re.search(r"--rank %d( |$)" % rank, args):
            return pid
    return None


def coordinator_pid(job):
    for pid, args in children(job.p.pid):
        if "lockstep-coordinator" in args:
            return pid
    return None


def final_hash(job):
    m = job.match(r"parameters bitwise identical on all \d+ workers \(hash ([0-9a-f]+)\)")
    return m.group(1) if m else None


def train(config, *extra, **kw):
    return Job([LOCKSTEP, "train", "--config", config, "--workers", "3", *extra], **kw)


def keep_log(job, name):
    """A failed trial's whole output, kept for a look (its path goes in the note)."""
    path = os.path.join(tempfile.gettempdir(), "lockstep-faults-%s-%d.log" % (name, job.p.pid))
    with open(path, "w") as f:
        f.write(job.text())
    return path


def fault(kind, detected, recovered, steps_lost=None, hash_equal=None, hang=False, lost_checkpoint=False, note=""):
    return dict(kind=kind, detected=detected, recovered=recovered, steps_lost=steps_lost, hash_equal=hash_equal,
                hang=hang, lost_checkpoint=lost_checkpoint, note=note)


# --- trials: each returns a list of faults --------------------------------------------------

def trial_kill_workers(rng, config, work, reference, kills=2):
    """SIGKILL a random worker `kills` times; the launcher replaces it and the job resumes."""
    d = tempfile.mkdtemp(dir=work)
    job = train(config, "--checkpoint-dir", d, "--checkpoint-every", "20", "--max-restarts", str(kills), "--rejoin-timeout", "60")
    faults = []
    if job.wait_for(r"epoch 1 step", 60) is None:
        kill_tree(job.p.pid)
        return [fault("worker SIGKILL", False, False, hang=True, note="never started")]
    for k in range(1, kills + 1):
        time.sleep(rng.uniform(0.3, 2.5))
        pid = worker_pid(job, rng.randrange(3))
        if pid is None or job.p.poll() is not None:
            break
        t0 = time.time()
        os.kill(pid, signal.SIGKILL)
        seen = job.wait_for(r"restart %d of" % k, 10, after=t0)
        survivors = job.wait_for(r"closed its connection .*restarting to rejoin", 10, after=t0)
        resumed = job.wait_for(r"restart %d: resumed" % k, 90, after=t0)
        m = job.match(r"restart %d: resumed .* (\d+) step\(s\) lost" % k)
        faults.append(dict(kind="worker SIGKILL", detected=seen is not None and seen - t0 <= 2 and survivors is not None,
                           recovered=resumed is not None, steps_lost=int(m.group(1)) if m else None))
        if resumed is None:
            break
        job.wait_for(r"step \d+/", 30, after=resumed)
    rc = job.finish()
    h = final_hash(job)
    if rc != 0:
        keep_log(job, "worker-sigkill")
    for f in faults:
        f.update(hang=rc is None, hash_equal=h == reference, lost_checkpoint=False, note="" if rc == 0 else job.text()[-400:])
        f["recovered"] = f["recovered"] and rc == 0
    return faults


def trial_stop_worker(rng, config, work, reference):
    """SIGSTOP a worker past the deadline, then SIGCONT: it is named at the deadline and replaced."""
    d = tempfile.mkdtemp(dir=work)
    job = train(config, "--checkpoint-dir", d, "--checkpoint-every", "20", "--max-restarts", "1", "--timeout", "4")
    if job.wait_for(r"epoch 1 step", 60) is None:
        kill_tree(job.p.pid)
        return [fault("worker SIGSTOP", False, False, hang=True, note="never started")]
    time.sleep(rng.uniform(0.3, 2.0))
    rank = rng.randrange(3)
    pid = worker_pid(job, rank)
    if pid is None:
        kill_tree(job.p.pid)
        return [fault("worker SIGSTOP", False, False, note="the job ended before the fault")]
    t0 = time.time()
    os.kill(pid, signal.SIGSTOP)
    seen = job.wait_for(r"rank %d \(.*was silent for 4 s" % rank, 12, after=t0)
    time.sleep(1)
    os.kill(pid, signal.SIGCONT)
    own = job.wait_for(r"this process itself did not run", 10, after=t0)
    resumed = job.wait_for(r"restart 1: resumed", 90, after=t0)
    m = job.match(r"restart 1: resumed .* (\d+) step\(s\) lost")
    rc = job.finish()
    detected = seen is not None and seen - t0 <= 4 + 2 and own is not None
    if not detected or rc != 0:
        keep_log(job, "worker-sigstop")
    return [fault("worker SIGSTOP", detected, resumed is not None and rc == 0, int(m.group(1)) if m else None,
                  final_hash(job) == reference, rc is None, note="" if rc == 0 and detected else job.text()[-1500:])]


def trial_kill_coordinator(rng, config, work, reference):
    """SIGKILL the coordinator: the workers finish and keep the final checkpoint and metrics."""
    d = tempfile.mkdtemp(dir=work)
    metrics = os.path.join(d, "m.jsonl")
    job = train(config, "--checkpoint-dir", d + "/ck", "--checkpoint-every", "50", "--metrics", metrics)
    if job.wait_for(r"epoch 1 step", 60) is None:
        kill_tree(job.p.pid)
        return [fault("coordinator SIGKILL", False, False, hang=True, note="never started")]
    time.sleep(rng.uniform(0.3, 2.5))
    t0 = time.time()
    os.kill(coordinator_pid(job), signal.SIGKILL)
    seen = [job.wait_for(r"rank %d: the coordinator at .* closed its connection" % r, 5, after=t0) for r in range(3)]
    rc = job.finish()
    m = job.match(r"finished (\d+) steps without the coordinator; parameter hash ([0-9a-f]+)")
    kept = False
    try:
        lines = [json.loads(l) for l in open(metrics)]
        steps = int(m.group(1)) if m else -1
        kept = lines[-1].get("event") == "final" and os.path.exists(os.path.join(d, "ck", "step-%08d.json" % steps))
    except (OSError, ValueError, IndexError):
        pass
    return [fault("coordinator SIGKILL", all(s is not None and s - t0 <= 2 for s in seen), kept, 0 if kept else None,
                  (m.group(2) if m else None) == reference, rc is None, lost_checkpoint=not kept)]


def trial_kill_job(rng, config, work, reference, corrupt=False):
    """SIGKILL the whole job at a random step, (corrupt the newest checkpoint,) then --resume auto."""
    d = tempfile.mkdtemp(dir=work)
    args = ("--checkpoint-dir", d, "--checkpoint-every", "20")
    job = train(config, *args)
    kind = "newest checkpoint corrupted" if corrupt else "whole job SIGKILL + --resume auto"
    if job.wait_for(r"epoch 1 step", 60) is None:
        kill_tree(job.p.pid)
        return [fault(kind, False, False, hang=True, note="never started")]
    time.sleep(rng.uniform(1.0, 4.0))
    os.kill(job.p.pid, signal.SIGKILL)  # the launcher; its coordinator and workers stop when it is gone
    job.p.wait()
    t0 = time.time()
    while time.time() - t0 < 5 and children(job.p.pid):
        time.sleep(0.1)
    orphans = subprocess.run(["pgrep", "-f", "--", "--checkpoint-dir %s" % d], capture_output=True, text=True).stdout.strip()
    time.sleep(0.5)
    manifests = sorted(f for f in os.listdir(d) if f.startswith("step-") and f.endswith(".json"))
    if not manifests:
        return [fault(kind, True, False, note="no checkpoint before the kill", lost_checkpoint=True)]
    newest = int(manifests[-1][5:13])
    if corrupt:
        path = os.path.join(d, "step-%08d.safetensors" % newest)
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
    again = train(config, *args, "--resume", "auto")
    rc = again.finish()
    m = again.match(r"--resume auto: resuming from .*step-(\d+)\.safetensors")
    resumed = int(m.group(1)) if m else None
    detected = not orphans and (again.match(r"skipping checkpoint .*step-%08d" % newest) is not None if corrupt else resumed == newest)
    lost_ck = resumed is None
    return [fault(kind, detected, rc == 0 and resumed is not None, None, final_hash(again) == reference, rc is None,
                  lost_checkpoint=lost_ck, note="" if rc == 0 else again.text()[-400:])]


def trial_full_disk(rng, config, work, reference, policy):
    """The checkpoint directory is a tmpfs with room for two checkpoints."""
    d = tempfile.mkdtemp(dir=work)
    kind = "checkpoint disk full (%s)" % policy
    # One checkpoint of this model is about 0.8 MB (weights + momentum).
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2000k", "tmpfs", d], capture_output=True).returncode != 0:
        return [fault(kind, False, False, note="skipped: cannot mount a tmpfs (needs root)")]
    try:
        job = train(config, "--checkpoint-dir", d, "--checkpoint-every", "20", "--keep-checkpoints", "10",
                    "--on-checkpoint-error", policy)
        rc = job.finish()
        warned = job.match(r"checkpoint at step \d+ not written to .*(No space|space)") is not None
        manifests = sorted(f for f in os.listdir(d) if f.endswith(".json"))
        temporaries = [f for f in os.listdir(d) if ".tmp-" in f]
        intact = bool(manifests) and all(
            os.path.getsize(os.path.join(d, f[:-5] + ".safetensors")) == json.load(open(os.path.join(d, f)))["bytes"] for f in manifests)
        if policy == "continue":
            recovered = rc == 0 and intact and not temporaries
            equal = final_hash(job) == reference
        else:
            recovered = rc == 1 and intact and not temporaries and job.match(r"stopping \(--on-checkpoint-error stop\)") is not None
            equal = None
        return [fault(kind, warned, recovered, None, equal, rc is None, lost_checkpoint=not intact)]
    finally:
        subprocess.run(["umount", d])


def trial_link_down(rng, config, work, reference):
    """The coordinator runs in a network namespace whose link goes down for 8 s, then up."""
    kind = "coordinator link down/up"
    if os.getuid() != 0:
        return [fault(kind, False, False, note="skipped: needs root for a network namespace")]
    name = "lf%d" % (os.getpid() % 1000)
    netns = os.path.join(ROOT, "tools", "netns.sh")
    if subprocess.run([netns, "up", "1", name], capture_output=True).returncode != 0:
        return [fault(kind, False, False, note="skipped: cannot create a network namespace")]
    d = tempfile.mkdtemp(dir=work)
    # A longer run than the others (6 epochs), so the link goes down well before its end.
    undisturbed = train(config, "--epochs", "6")
    undisturbed.finish()
    reference = final_hash(undisturbed)
    keys = os.path.join(d, "keys")
    subprocess.run([LOCKSTEP, "keygen", "--out", keys, "--name", "job"], capture_output=True, check=True)
    sec = ["--key", keys + "/job.key", "--allow", keys]
    port = 21000 + os.getpid() % 1000
    try:
        coord = Job(["ip", "netns", "exec", name + "2", os.path.join(BIN, "lockstep-coordinator"), "--config", config, "--bind",
                     "tcp://0.0.0.0:%d" % port, "--workers", "3", "--timeout", "3", "--epochs", "6", "--checkpoint-dir", d + "/ck",
                     "--metrics", d + "/m.jsonl", *sec])
        workers = [Job([os.path.join(BIN, "lockstep-worker"), "--config", config, "--coordinator", "tcp://10.89.0.2:%d" % port,
                        "--rank", str(r), *sec]) for r in range(3)]
        # The workers keep their results where the coordinator's flags say (one file system here).
        started = workers[0].wait_for(r"data endpoint", 60)
        if started is None:
            raise RuntimeError("workers did not start:\n" + coord.text()[-400:])
        time.sleep(rng.uniform(0.1, 0.6))
        t0 = time.time()
        subprocess.run(["ip", "link", "set", name + "-v2", "down"], check=True)
        seen = [w.wait_for(r"coordinator tcp://10.89.0.2:%d unreachable from rank %d for 3 s" % (port, r), 12, after=t0)
                for r, w in enumerate(workers)]
        own = coord.wait_for(r"this coordinator's own network link is likely down", 12, after=t0)
        time.sleep(max(0, 8 - (time.time() - t0)))
        subprocess.run(["ip", "link", "set", name + "-v2", "up"], check=True)
        rcs = [w.finish() for w in workers]
        coord.finish(30)
        found = [w.match(r"finished \d+ steps without the coordinator; parameter hash ([0-9a-f]+)") for w in workers]
        hs = {m.group(1) if m else None for m in found}
        kept = workers[0].match(r"kept metrics in .* and the final checkpoint") is not None and os.path.exists(d + "/m.jsonl")
        return [fault(kind, all(s is not None and s - t0 <= 3 + 2 for s in seen) and own is not None,
                      all(rc == 0 for rc in rcs) and kept, 0 if kept else None, hs == {reference}, any(rc is None for rc in rcs),
                      lost_checkpoint=not kept,
                      note="" if kept and own is not None and all(seen) else (coord.text()[-300:] + "\n" + workers[0].text()[-600:]))]
    except Exception as e:
        return [fault(kind, False, False, note=str(e)[:300])]
    finally:
        subprocess.run([netns, "down", "1", name], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of every trial (5: 60 faults)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--json", help="also write the faults as JSON here")
    ap.add_argument("--only", help="run only the trials whose fault name contains this text")
    a = ap.parse_args()
    if not os.access(LOCKSTEP, os.X_OK):
        sys.exit("faults.py: %s not found; run `swift build -c release` first" % LOCKSTEP)
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="lockstep-faults-")
    config = os.path.join(work, "job.toml")
    open(config, "w").write(CONFIG)
    ref = train(config, "--checkpoint-dir", os.path.join(work, "reference"), "--checkpoint-every", "20")
    if ref.finish() != 0 or final_hash(ref) is None:
        sys.exit("faults.py: the undisturbed run failed:\n" + ref.text()[-2000:])
    reference = final_hash(ref)
    print("faults.py: seed %d; undisturbed run: hash %s" % (a.seed, reference), flush=True)
    faults = []
    for r in range(a.rounds):
        trials = [
            ("worker SIGKILL", lambda: trial_kill_workers(rng, config, work, reference, kills=2 if a.rounds > 1 else 1)),
            ("worker SIGKILL", lambda: trial_kill_workers(rng, config, work, reference, kills=3 if a.rounds > 1 else 1)),
            ("worker SIGSTOP", lambda: trial_stop_worker(rng, config, work, reference)),
            ("coordinator SIGKILL", lambda: trial_kill_coordinator(rng, config, work, reference)),
            ("whole job SIGKILL", lambda: trial_kill_job(rng, config, work, reference)),
            ("checkpoint corrupted", lambda: trial_kill_job(rng, config, work, reference, corrupt=True)),
            ("disk full (continue)", lambda: trial_full_disk(rng, config, work, reference, "continue")),
            ("disk full (stop)", lambda: trial_full_disk(rng, config, work, reference, "stop")),
            ("link down", lambda: trial_link_down(rng, config, work, reference)),
        ]
        for name, trial in trials:
            if a.only and a.only not in name:
                continue
            got = trial()
            for f in got:
                print("  %-36s detected %-5s recovered %-5s steps lost %-4s hash equal %-5s %s" % (
                    f["kind"], f["detected"], f["recovered"], f["steps_lost"], f["hash_equal"], f["note"][:160].replace("\n", " ")),
                    flush=True)
            faults += got
    shutil.rmtree(work, ignore_errors=True)
    injected = [f for f in faults if not f["note"].startswith("skipped")]
    kinds = []
    for f in faults:
        if f["kind"] not in kinds:
            kinds.append(f["kind"])
    print("\n| fault | injected | detected within bound | recovered | steps lost (mean) | final hash equal | hangs | lost checkpoints |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in kinds + ["all"]:
        fs = [f for f in injected if k == "all" or f["kind"] == k]
        if not fs:
            print("| %s | skipped: %s | | | | | | |" % (k, next(f["note"] for f in faults if f["kind"] == k)))
            continue
        lost = [f["steps_lost"] for f in fs if f["steps_lost"] is not None]
        eq = [f for f in fs if f["hash_equal"] is not None]
        print("| %s | %d | %d | %d | %s | %s | %d | %d |" % (
            k, len(fs), sum(f["detected"] for f in fs), sum(f["recovered"] for f in fs),
            "%.1f" % (sum(lost) / len(lost)) if lost else "-", "%d/%d" % (sum(f["hash_equal"] for f in eq), len(eq)) if eq else "-",
            sum(f["hang"] for f in fs), sum(f["lost_checkpoint"] for f in fs)))
    if a.json:
        json.dump(dict(seed=a.seed, reference=reference, faults=faults), open(a.json, "w"), indent=1)
    bad = [f for f in injected if f["hang"] or f["lost_checkpoint"] or not f["recovered"] or not f["detected"] or f["hash_equal"] is False]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
