"""Seconds per training epoch of each evaluation student on a 10-class IPC-10 set at 224 px, and
what the full protocols would take at that rate.

The set is synthesised (100 PNGs of coloured shapes on noise); one epoch is what `hieramp
evaluate --val` runs per epoch: augmentation, CutMix, the student's forward and backward, and for
the soft protocol the ResNet-18 teacher's forward (random weights: the cost is the same). Wall
time and process CPU time are recorded with the 1-minute load average, since the machine may be
shared. Validation is not included (every 10 epochs in the last 20 % of the soft protocol).

    PYTHONPATH=src .venv/bin/python benchmarks/evaluate_epoch_time.py --out benchmarks/results/evaluate-epoch-time.md
"""
import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from hieramp.bench.machine import describe_machine
from hieramp.evaluate.folders import image_files
from hieramp.evaluate.images import ImageSet, train_view
from hieramp.evaluate.loop import Settings, train_epoch
from hieramp.evaluate.protocols import PROTOCOLS
from hieramp.evaluate.students import STUDENTS, build_student, resnet18
from hieramp.evaluate.teacher import Teacher

CLASSES, IPC, SIZE = 10, 10, 224


def synthesise(root: Path) -> list:
    rng = np.random.default_rng(0)
    folders = []
    for c in range(CLASSES):
        folder = root / f"{c:02d}"
        folder.mkdir(parents=True)
        for i in range(IPC):
            img = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
            x, y = rng.integers(0, SIZE // 2, 2)
            ImageDraw.Draw(img).ellipse([int(x), int(y), int(x) + SIZE // 2, int(y) + SIZE // 2],
                                        fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            img.save(folder / f"{i}.png")
        folders.append(folder)
    return folders


def load() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def time_epochs(student: str, protocol: str, trainset: ImageSet, epochs: int, batch: int | None) -> dict:
    """`batch` (default: the protocol's) only splits the same images into more steps: less memory."""
    spec = PROTOCOLS[protocol]
    batch = batch or spec.default_batch_size(IPC, CLASSES, len(trainset))
    settings = Settings(spec, student, 1, batch, SIZE, CLASSES)
    torch.manual_seed(0)
    model = build_student(student, CLASSES, SIZE).train()
    teacher = Teacher(resnet18(CLASSES), None) if spec.soft_labels else None
    optimizer = spec.make_optimizer(model)
    rows = []
    for _ in range(epochs):
        load_before, wall, cpu = load(), time.perf_counter(), time.process_time()
        train_epoch(model, optimizer, trainset, teacher, settings, None)
        rows.append({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                     "load_before": load_before, "load_after": load()})
    wall = float(np.mean([r["wall_s"] for r in rows]))
    full = spec.default_epochs(IPC, CLASSES)
    return {"student": student, "protocol": protocol, "batch_size": batch, "epochs_timed": rows,
            "wall_s_per_epoch": wall, "cpu_s_per_epoch": float(np.mean([r["cpu_s"] for r in rows])),
            "protocol_epochs": full, "protocol_hours": wall * full / 3600,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def write_report(record: dict, out: Path):
    """The markdown table of a record (also rebuilt from a saved JSON: write_report(json.load(f), out))."""
    machine = record["machine"]
    lines = [f"# Evaluation students: seconds per epoch, {record['set']}", "",
             f"{machine['cpu']} ({machine['cpu_cores']} cores), {record['threads']} torch threads. Load: the 1-minute "
             f"load average before / after each epoch. CPU s: process CPU time (all threads), less inflated by "
             f"other jobs than wall time.", "",
             "| protocol | student | batch | wall s/epoch | CPU s/epoch | load | protocol epochs | full protocol, wall | full protocol, CPU | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["results"]:
        loads = ", ".join(f"{e['load_before']:.2f}/{e['load_after']:.2f}" for e in r["epochs_timed"])
        rss = f"{r['peak_rss_gb']:.1f} GB" if "peak_rss_gb" in r else "not recorded"
        lines.append(f"| {r['protocol']} | {r['student']} | {r['batch_size']} | {r['wall_s_per_epoch']:.1f} | "
                     f"{r['cpu_s_per_epoch']:.1f} | {loads} | {r['protocol_epochs']} | {r['protocol_hours']:.1f} h | "
                     f"{r['cpu_s_per_epoch'] * r['protocol_epochs'] / 3600:.1f} h | "
                     f"{rss} |")
    out.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="markdown report; the JSON goes next to it")
    parser.add_argument("--students", default=",".join(STUDENTS))
    parser.add_argument("--protocols", default="soft,hard")
    parser.add_argument("--epochs", type=int, default=1, help="epochs timed per student and protocol")
    parser.add_argument("--batch-size", type=int, help="steps of this many images (default: the protocol's batch)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        paths, labels = image_files(synthesise(Path(scratch)))
        trainset = ImageSet(paths, labels, train_view(SIZE), SIZE, workers=2, desc="reading")
    results = []
    for protocol in args.protocols.split(","):
        for student in args.students.split(","):
            results.append(time_epochs(student, protocol, trainset, args.epochs, args.batch_size))
            r = results[-1]
            print(f"{protocol} {student}: {r['wall_s_per_epoch']:.1f} s/epoch wall, {r['cpu_s_per_epoch']:.1f} s CPU, "
                  f"load {r['epochs_timed'][0]['load_before']:.2f}", flush=True)
    out = Path(args.out)
    record = {"machine": describe_machine(), "threads": args.threads, "set": f"{CLASSES} classes x IPC {IPC}, {SIZE} px",
              "results": results}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    write_report(record, out)


if __name__ == "__main__":
    main()
