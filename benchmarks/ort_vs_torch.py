"""Seconds per image, ONNX Runtime against the torch reference, side by side in one run.

Arms: torch and onnxruntime, each with amplification on (the paper's block, scaled to the
depth) and off (the model's class tokens, no op). ONNX Runtime runs two exports: one with the
op node, one without it (its amplification-off column). Every generator is warmed up once at
batch 1; then, per batch size and iteration, the arms run one after another in a rotating
order, so that load from other processes on the machine spreads over all of them. Each run is
timed whole and per stage (hieramp.bench.timing.TimedBackend).

Whole runs cannot resolve a cost of a few percent on a shared machine, so the cost of
amplification is also measured on single steps: at a few scales, the step with the op and
without it alternate, and the fastest of several repetitions counts.

    .venv/bin/python benchmarks/ort_vs_torch.py --model d16 --batch-sizes 1,8 --amp-off-batch-sizes 1
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from hieramp import AmpConfig, Generator, UserError
from hieramp.bench.machine import describe_machine, load_average
from hieramp.bench.timing import TimedBackend
from hieramp.commands.common import default_amp_layers, int_list
from hieramp.export.exporter import export_model
from hieramp.export.manifest import ExportManifest
from hieramp.model.presets import random_model

STAGES = ("begin", "steps", "sample", "update", "decode")


def export_once(model, out: Path, amp_layers) -> Path:
    """Reuse an export of this very model with these layers; export otherwise."""
    try:
        manifest = ExportManifest.read(out)
        manifest.check_model(model)
        if manifest.amp_layers == tuple(amp_layers):
            return out
    except UserError:
        pass
    export_model(model, out, amp_layers=amp_layers)
    return out


def arms(model, export_dir: Path, threads):
    layers = default_amp_layers(model.cfg.depth)
    on, off = AmpConfig(layers=layers), AmpConfig(enabled=False)
    with_op = export_once(model, export_dir / "amp", layers)
    without_op = export_once(model, export_dir / "no-amp", ())
    reference = Generator(model)
    return {
        ("torch", "on"): (reference, on),
        ("torch", "off"): (reference, off),
        ("onnxruntime", "on"): (Generator(model, "onnxruntime", export_dir=with_op, threads=threads), on),
        ("onnxruntime", "off"): (Generator(model, "onnxruntime", export_dir=without_op, threads=threads), off),
    }


def timed_run(generator, amp, batch, seed):
    """Seconds of one batch, and seconds per stage."""
    backend = generator.backend
    generator.backend = timed = TimedBackend(backend)
    try:
        start = time.perf_counter()
        generator.run(list(range(batch)), seed=seed, amp=amp)
        total = time.perf_counter() - start
    finally:
        generator.backend = backend
    steps = sum(v for k, v in timed.seconds.items() if k.startswith("step"))
    stages = {k: timed.seconds.get(k, 0.0) for k in STAGES if k != "steps"} | {"steps": steps}
    return total, stages


def step_seconds(backend, cfg, plan, si, reps_log, batch=1):
    """One step of scale si at batch `batch`, after `begin` (cache contents do not matter for time)."""
    n = cfg.patch_nums[si] ** 2
    backend.begin(torch.arange(batch), plan)
    # The torch step embeds VQ features (B, n, Cv); the onnxruntime step takes embedded tokens (2B, n, C).
    feats = torch.randn(batch, n, cfg.vae.Cvae) if backend.name == "torch" else torch.randn(2 * batch, n, cfg.embed_dim)
    beta, rho = (plan.beta[si], plan.rho[si]) if plan is not None else (0.0, 1.0)
    start = time.perf_counter()
    backend.step(si, feats, beta, rho, 1.0)
    reps_log.append(time.perf_counter() - start)


def amp_step_cost(all_arms, cfg, scales, reps):
    """Per backend and scale: fastest step with the op and without it, alternating."""
    out = {}
    for backend_name in ("torch", "onnxruntime"):
        (gen_on, amp_on), (gen_off, _) = all_arms[(backend_name, "on")], all_arms[(backend_name, "off")]
        plan_on = amp_on.resolve(cfg)
        for si in scales:
            on, off = [], []
            for _ in range(reps):
                step_seconds(gen_on.backend, cfg, plan_on, si, on)
                step_seconds(gen_off.backend, cfg, None, si, off)
            out[(backend_name, si)] = (min(on), min(off))
            print(f"step {backend_name} scale {si}: on {min(on):.3f} s, off {min(off):.3f} s", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="d16", help="architecture built with random weights (default d16)")
    p.add_argument("--batch-sizes", default="1,8", help="batch sizes with amplification on (default 1,8)")
    p.add_argument("--amp-off-batch-sizes", default="1", help="batch sizes that also run amplification off (default 1)")
    p.add_argument("--iters", default="3,1", help="timed runs per arm, per batch size in order (default 3,1)")
    p.add_argument("--step-scales", default="3,6,9", help="scales whose single steps measure the op's cost (default 3,6,9)")
    p.add_argument("--step-reps", type=int, default=7, help="repetitions per single-step measurement (default 7)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: its own choice)")
    p.add_argument("--export-dir", default=str(Path.home() / ".cache" / "hieramp" / "ort_vs_torch"),
                   help="where the two exports are kept and reused")
    p.add_argument("--out", default="benchmarks/results/ort_vs_torch.md", help="markdown report")
    args = p.parse_args()

    model = random_model(args.model)
    all_arms = arms(model, Path(args.export_dir) / model.source.fingerprint, args.threads)
    plan = {b: ["on", "off"] if b in int_list(args.amp_off_batch_sizes) else ["on"] for b in int_list(args.batch_sizes)}
    load_before = load_average()
    for key, (generator, amp) in all_arms.items():                          # warm-up: sessions, caches, allocators
        if key == ("torch", "off"):
            continue                                                         # the same generator as ("torch", "on")
        t, _ = timed_run(generator, amp, 1, seed=99)
        print(f"warm-up {key}: {t:.1f} s", flush=True)
    iters = dict(zip(plan, int_list(args.iters) + [int_list(args.iters)[-1]] * len(plan)))
    results = {}                                                             # (batch, backend, amp) -> [(total, stages)]
    for batch, amps in plan.items():
        keys = [k for k in all_arms if k[1] in amps]
        for it in range(iters[batch]):
            for key in keys[it % len(keys):] + keys[:it % len(keys)]:
                generator, amp = all_arms[key]
                total, stages = timed_run(generator, amp, batch, seed=it)
                results.setdefault((batch, *key), []).append((total, stages))
                print(f"batch {batch} {key}: {total:.1f} s ({total / batch:.2f} s/image)", flush=True)
    steps = amp_step_cost(all_arms, model.cfg, int_list(args.step_scales), args.step_reps)
    report = markdown(args, iters, results, steps, load_before, load_average(), describe_machine(), model.cfg)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)


def markdown(args, iters, results, steps, load_before, load_after, machine, cfg) -> str:
    def per_image(batch, backend, amp, stat=statistics.median):
        return stat(t for t, _ in results[(batch, backend, amp)]) / batch

    lines = [f"# ONNX Runtime vs the torch reference: {args.model} (random weights), CPU", "",
             f"Machine: {machine['cpu']} ({machine['cpu_cores']} cores), {machine['memory_gb']} GB; torch "
             f"{machine['versions'].get('torch')} ({machine['torch_threads']} threads), onnxruntime "
             f"{machine['versions'].get('onnxruntime')} (intra-op threads: {args.threads or 'default'}); {machine['date']}.",
             f"1-minute load average before / after: {load_before} / {load_after}.",
             f"Depth {cfg.depth}, width {cfg.embed_dim}, {cfg.num_scales} scales, {cfg.vae.image_size} px; "
             f"amplification at block {default_amp_layers(cfg.depth)[0]}. Timed runs per cell (batch: runs): "
             f"{iters}, after one warm-up run per generator at batch 1; arms interleaved.", "",
             "## Seconds per image (median of the runs; fastest run in brackets)", "",
             "| batch | amp | torch s/img | onnxruntime s/img | speed-up (median) | speed-up (fastest) |",
             "|---|---|---|---|---|---|"]
    for (batch, _, amp) in sorted({(b, "torch", a) for b, _, a in results}):
        t, o = per_image(batch, "torch", amp), per_image(batch, "onnxruntime", amp)
        t_min, o_min = per_image(batch, "torch", amp, min), per_image(batch, "onnxruntime", amp, min)
        lines.append(f"| {batch} | {amp} | {t:.2f} ({t_min:.2f}) | {o:.2f} ({o_min:.2f}) | {t / o:.2f}x | {t_min / o_min:.2f}x |")
    lines += ["", "## Cost of amplification: whole runs (on vs off, median)", "",
              "| batch | backend | on s/img | off s/img | difference |", "|---|---|---|---|---|"]
    for (batch, backend) in sorted({(b, k) for b, k, a in results if a == "off"}):
        on, off = per_image(batch, backend, "on"), per_image(batch, backend, "off")
        lines.append(f"| {batch} | {backend} | {on:.2f} | {off:.2f} | {100 * (on - off) / off:+.1f}% |")
    lines += ["", f"## Cost of amplification: single steps at batch 1 (fastest of {args.step_reps}, on and off alternating)",
              "", "| backend | scale | tokens | with op s | without op s | cost |", "|---|---|---|---|---|---|"]
    for (backend, si), (on, off) in sorted(steps.items()):
        lines.append(f"| {backend} | {si} | {cfg.patch_nums[si] ** 2} | {on:.3f} | {off:.3f} | {100 * (on - off) / off:+.1f}% |")
    lines += ["", "## Where the time goes (seconds per batch, median run)", "",
              "| batch | backend | amp | " + " | ".join(STAGES) + " | total |", "|" + "---|" * (len(STAGES) + 4)]
    for key in sorted(results):
        runs = sorted(results[key], key=lambda r: r[0])
        total, stages = runs[len(runs) // 2]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(f"{stages[s]:.2f}" for s in STAGES) + f" | {total:.2f} |")
    lines += ["", f"Command: `{' '.join([os.path.basename(sys.executable), *sys.argv])}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
