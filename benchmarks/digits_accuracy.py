"""Does amplification help the distilled set? Students on digits distilled by the bundled model.

For each images-per-class count and each distillation seed, the bundled `default` (digits) model
distils one set per amplification strength beta (mode logit, rho 0.5, the CLI's default block and
scales; beta 5 is the paper's and the CLI's default) and one without amplification, all with the
same seed, so the sets differ only by amplification; `evaluate_images` trains --students CNN
students on each and tests them on the held-out real digits. Real training digits picked at
random (same counts) are the baseline. Mean and standard deviation are over every student of
every distillation seed.

    .venv/bin/python benchmarks/digits_accuracy.py --out benchmarks/results/digits-accuracy.md
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hieramp.bench.machine import describe_machine
from hieramp.distill import DistillSettings, distill
from hieramp.model.amp_config import AmpConfig, default_amp_layers
from hieramp.model.presets import resolve_model
from hieramp.runtime.generator import Generator
from hieramp.train.data import IMAGE_SIZE, NUM_CLASSES, load_digits_split, to_rgb
from hieramp.train.evaluate import evaluate_images, read_image_folder


def distilled_accuracies(generator, amp, ipc, seed, students, scratch) -> list:
    out = Path(tempfile.mkdtemp(dir=scratch))
    distill(generator, range(NUM_CLASSES), ipc, out, DistillSettings(seed=seed, amp=amp, save_size=IMAGE_SIZE),
            batch_size=32, progress=False)
    return list(evaluate_images(*read_image_folder(out), seeds=students).accuracies)


def real_accuracies(ipc, seed, students) -> list:
    train, _ = load_digits_split()
    rng = np.random.default_rng(seed)
    picked = np.concatenate([rng.choice(np.flatnonzero(train.labels == c), ipc, replace=False)
                             for c in range(NUM_CLASSES)])
    return list(evaluate_images(to_rgb(train.images[picked]), torch.as_tensor(train.labels[picked]),
                                seeds=students).accuracies)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ipc", default="10,50", help="images per class, comma-separated")
    parser.add_argument("--betas", default="1,2,5", help="amplification strengths, comma-separated")
    parser.add_argument("--distill-seeds", type=int, default=3, help="distillation (and real-subset) seeds 0..N-1")
    parser.add_argument("--students", type=int, default=5, help="students per set")
    parser.add_argument("--out", required=True, help="Markdown table; the JSON goes next to it")
    args = parser.parse_args()

    model = resolve_model("default")
    generator = Generator(model)
    layers = default_amp_layers(model.cfg.depth)
    amps = {f"beta {beta:g}": AmpConfig(beta=beta, layers=layers) for beta in map(float, args.betas.split(","))}
    amps["plain"] = AmpConfig(enabled=False)
    sets = [*amps, "real"]
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for ipc in map(int, args.ipc.split(",")):
            accs = {name: [] for name in sets}
            for seed in range(args.distill_seeds):
                for name, amp in amps.items():
                    accs[name] += distilled_accuracies(generator, amp, ipc, seed, args.students, scratch)
                accs["real"] += real_accuracies(ipc, seed, args.students)
                print(f"ipc {ipc} seed {seed}: " + ", ".join(f"{k} {100 * np.mean(v):.2f}" for k, v in accs.items()),
                      flush=True)
            results[ipc] = {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "accuracies": v}
                            for name, v in accs.items()}

    record = {"model": model.source.name, "amp_layers": list(layers), "distill_seeds": args.distill_seeds,
              "students": args.students, "seconds": round(time.perf_counter() - started), "machine": describe_machine(),
              "results": {str(k): v for k, v in results.items()}}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    rows = [f"| {ipc} | " + " | ".join(f"{100 * r[name]['mean']:.2f} +- {100 * r[name]['std']:.2f}" for name in sets) + " |"
            for ipc, r in results.items()]
    machine = record["machine"]
    out.write_text("\n".join([
        "# Students trained on distilled digits, tested on the held-out real digits",
        "",
        f"Model: bundled `default` (digits); amplification (mode logit, rho 0.5) at block(s) {list(layers)}.",
        f"Accuracy in % (mean +- std over {args.distill_seeds} distillation seeds x {args.students} students). "
        "`real`: the same number of real training digits per class, picked at random.",
        f"Machine: {machine['cpu']}, {machine['cpu_cores']} cores, torch {torch.__version__}; {record['seconds']} s.",
        "",
        "| images per class | " + " | ".join(sets) + " |",
        "|---" * (len(sets) + 1) + "|",
        *rows, ""]))
    print(out.read_text())


if __name__ == "__main__":
    main()
