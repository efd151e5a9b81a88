"""Does the digits recipe still compute what it did at an earlier commit? Runs each phase of the
recipe for a few dozen steps from the same seed with the code of REF (extracted with `git archive`)
and with this tree, each in its own process, and compares the weights bit for bit. It also times
each phase (wall and process CPU seconds; the 1-minute load average is recorded with them).

    PYTHONPATH=src python benchmarks/digits_same_numerics.py --ref 3d10f58 --json benchmarks/results/digits-same-numerics.json
"""
import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# Run inside the old or the new tree: a few steps of every phase, weights saved to argv[1].
PHASES = r'''
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
import torch
from hieramp.train.data import load_digits_split, to_rgb
from hieramp.train.fit import reproducible
from hieramp.train.student import STUDENT_SCHEDULE, train_student
from hieramp.train.var import FINETUNE_SCHEDULE, PRETRAIN_SCHEDULE, finetune_class_tokens, pretrain_var, tokenize
from hieramp.train.vqvae import VAE_SCHEDULE, train_vqvae

steps = int(sys.argv[2])
out, seconds = {}, {}


@contextmanager
def timed(name):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    seconds[name] = {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2)}


with reproducible(0):
    train, _ = load_digits_split()
    images = to_rgb(train.images[:512])
    with timed("vqvae"):
        vae, _, _ = train_vqvae(images, 0, schedule=replace(VAE_SCHEDULE, steps=steps, warmup=5), progress=False)
    out["vqvae"] = vae.state_dict()
    data = tokenize(vae, images, train.labels[:512])
    with timed("var"):
        plain, _ = pretrain_var(data, 0, schedule=replace(PRETRAIN_SCHEDULE, steps=steps, warmup=5), progress=False)
    out["var"] = plain.state_dict()
    with timed("class_tokens"):
        var, head, _, _ = finetune_class_tokens(plain, data, 0, schedule=replace(FINETUNE_SCHEDULE, steps=steps, warmup=5),
                                                progress=False)
    out["class_tokens"] = {**var.state_dict(), **{f"class_head.{k}": v for k, v in head.state_dict().items()}}
    with timed("student"):
        out["student"] = train_student(images, train.labels[:512], 0, replace(STUDENT_SCHEDULE, steps=steps)).state_dict()
out["seconds"] = seconds
torch.save(out, sys.argv[1])
'''


def run_phases(src: Path, out: Path, steps: int):
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "2"}
    subprocess.run([sys.executable, "-c", PHASES, str(out), str(steps)], env=env, check=True)
    return torch.load(out, weights_only=True)


def compare(old: dict, new: dict) -> dict:
    if set(old) != set(new):
        return {"identical": False, "keys_only_old": sorted(set(old) - set(new)), "keys_only_new": sorted(set(new) - set(old))}
    diff = max((old[k].float() - new[k].float()).abs().max().item() for k in old)
    return {"identical": all(torch.equal(old[k], new[k]) for k in old), "max_abs_diff": diff}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", required=True, help="git commit whose digits code is the reference")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--json", help="write the comparison here")
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = subprocess.run(["git", "archive", args.ref, "src/hieramp"], cwd=ROOT, check=True, capture_output=True).stdout
        tarfile.open(fileobj=BytesIO(archive)).extractall(tmp / "old", filter="data")
        old = run_phases(tmp / "old" / "src", tmp / "old.pth", args.steps)
        new = run_phases(ROOT / "src", tmp / "new.pth", args.steps)
    old_s, new_s = old.pop("seconds"), new.pop("seconds")
    result = {"ref": args.ref, "steps": args.steps, "load_before": load_before, "load_after": os.getloadavg()[0],
              "phases": {name: {**compare(old[name], new[name]), "seconds_old": old_s[name], "seconds_new": new_s[name]}
                         for name in old}}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
