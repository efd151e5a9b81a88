"""Speed and peak memory of `hieramp finetune` on this CPU: images per second and peak RSS, fp32 vs
bf16, for the tiny preset and d16 with random weights at a small batch. Each configuration runs in
its own process (so its peak RSS is its own) for a few steps; the first step is warm-up and not
counted. The 1-minute load average is recorded before and after each run, with the process CPU time.

    PYTHONPATH=src python benchmarks/finetune_cpu.py --out benchmarks/results/finetune-cpu
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RUN = r'''
import sys
from hieramp.finetune import FinetuneSettings, RunOptions, finetune
model, data, out, steps, batch, precision = sys.argv[1:7]
settings = FinetuneSettings(model=model, vae=None, data=data, random_init=True, steps=int(steps), batch_size=int(batch),
                            precision=precision)
finetune(settings, RunOptions(out=out, log_every=1, save_every=10 ** 9, progress=False))
'''
CONFIGS = [  # (model, image side, batch, steps)
    ("tiny-plain", 8, 16, 12),
    ("d16", 256, 2, 3),
]
D16_MIN_FREE_GB = 9.0           # d16 at batch 2 peaked at 8.2 GB RSS in fp32 (weights, gradients, AdamW state)


def write_images(root: Path, side: int, per_class=8, classes=2):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / str(c)).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (side + side // 8, side + side // 8, 3), dtype=np.uint8)).save(root / str(c) / f"{i}.png")


def mem_available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2 ** 20
    return float("nan")


def measure(model, side, batch, steps, precision, tmp: Path) -> dict:
    data, out = tmp / f"data-{side}", tmp / f"run-{model}-{precision}"
    if not data.exists():
        write_images(data, side)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    load_before, cpu_before, wall = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-c", RUN, model, str(data), str(out), str(steps), str(batch), precision], env=env, check=True)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    rates = [r["img_s"] for r in log[1:]]                                   # step 1 is warm-up
    cpu_per_image = statistics.median(r["cpu_s"] for r in log[1:]) / batch
    return {"model": model, "precision": precision, "batch": batch, "image_side": side, "steps": steps,
            "img_s_median": statistics.median(rates), "img_s_min": min(rates), "img_s_max": max(rates),
            "s_per_step_median": batch / statistics.median(rates), "cpu_s_per_image": cpu_per_image,
            "peak_rss_mb": log[-1]["peak_mem_mb"],
            "process_wall_s": round(time.perf_counter() - wall, 1),
            "process_cpu_s": round(cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime, 1),
            "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0], "final_loss": log[-1]["loss"]}


def markdown(rows, machine) -> str:
    lines = [f"# hieramp finetune on the CPU ({machine})", "",
             "img/s: median over the steps after the first (wall clock); CPU s/img: the training process's CPU "
             "seconds per image over those steps (less disturbed by other jobs than the wall clock); peak RSS of the "
             "training process; CPU s and wall s: the whole process (start-up, model build, steps); load: 1-minute "
             "load average before / after the run (2 cores).", "",
             "| model | precision | batch | img/s (min-max) | CPU s/img | peak RSS MB | CPU s | wall s | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['precision']} | {r['batch']} | skipped: {r['skipped']} | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['precision']} | {r['batch']} | {r['img_s_median']:.2f} ({r['img_s_min']:.2f}-"
                     f"{r['img_s_max']:.2f}) | {r['cpu_s_per_image']:.3f} | {r['peak_rss_mb']:.0f} | {r['process_cpu_s']} | "
                     f"{r['process_wall_s']} | {r['load_1min_before']:.1f} / {r['load_1min_after']:.1f} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results stem: writes STEM.json and STEM.md")
    p.add_argument("--models", default="tiny-plain,d16")
    args = p.parse_args()
    import platform
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, side, batch, steps in CONFIGS:
            if model not in args.models.split(","):
                continue
            for precision in ("fp32", "bf16"):
                free = mem_available_gb()
                if model == "d16" and free < D16_MIN_FREE_GB:
                    rows.append({"model": model, "precision": precision, "batch": batch,
                                 "skipped": f"{free:.1f} GB available, {D16_MIN_FREE_GB} needed"})
                    continue
                try:
                    rows.append(measure(model, side, batch, steps, precision, Path(tmp)))
                except subprocess.CalledProcessError as err:          # e.g. killed for memory by the kernel
                    rows.append({"model": model, "precision": precision, "batch": batch,
                                 "skipped": f"the run failed (exit code {err.returncode}; -9: killed, e.g. out of memory)"})
                print(json.dumps(rows[-1]), flush=True)
    Path(f"{args.out}.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    Path(f"{args.out}.md").write_text(markdown(rows, machine))
    print(markdown(rows, machine))


if __name__ == "__main__":
    main()
