"""DiT-XL/2 with HierAmp on this machine: seconds per denoising step and per image, plain and
amplified (each mask source), torch and ONNX Runtime, batch 1, random weights.

One step is the loop body of `hieramp.runtime.dit.loop.denoise`: the mask (top-k of the saliency), the
guided step (conditional and unconditional halves in one batch of 2), the sampler update. Per
image = the first step unamplified + (steps - 1) amplified steps + one VAE decode, from the
measured medians (50 full steps per arm take too long on a shared CPU). Only one copy of the
675 M weights is held at a time: the torch weights go before the ONNX Runtime session loads.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/dit_step_cost.py --out benchmarks/results/dit_step_cost-cpu-xl2

writes OUT.json and OUT.md. Wall times on a shared machine follow its load (recorded around every
measurement); CPU seconds (all threads of the process) move less with it.
"""
import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hieramp.bench.machine import describe_machine, load_average
from hieramp.model.dit.amp import DiTAmpConfig, object_mask
from hieramp.runtime.dit.backends import OrtStep, TorchStep
from hieramp.model.dit.presets import random_dit_model
from hieramp.model.dit.diffusion import Sampler
from hieramp.export.dit import export_dit
from hieramp.model.dit.vae import decode
from hieramp.files import write_atomic

SOURCES = ("cfg-diff", "attention", "file")


def arms(cfg):
    """name -> (plan or None): plain, then one amplified arm per mask source."""
    out = {"plain": None}
    for source in SOURCES:
        mask = "file:." if source == "file" else source
        out[source] = DiTAmpConfig(mask=mask).resolve(cfg, 50)
    return out


def time_steps(backend, sampler, plan, reps, warmup, cfg):
    """Median wall and CPU seconds of one loop body, with the 1-minute load average around it."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, cfg.in_channels, cfg.input_size, cfg.input_size, generator=gen)
    y, noise = torch.tensor([207 % cfg.num_classes]), torch.randn_like(x)
    saliency = torch.rand(1, cfg.num_tokens, generator=gen)
    backend.begin(y, plan)
    want_mass = plan is not None and plan.source == "attention"
    wall, cpu, loads = [], [], []
    for rep in range(warmup + reps):
        i = 1 + rep % (sampler.steps - 1)
        t = torch.tensor([sampler.timestep(i)])
        loads.append(load_average())
        w0, c0 = time.perf_counter(), time.process_time()
        mask = object_mask(saliency, plan.rho) if plan is not None else None
        guided, cfg_diff, mass = backend.step(i, x, t, y, 4.0, mask, plan.beta if plan else 1.0, want_mass)
        saliency = mass if want_mass else cfg_diff
        sampler.update(i, x, guided, noise)
        if rep >= warmup:
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
    loads.append(load_average())
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu), "reps": reps,
            "wall_all_s": [round(s, 3) for s in wall], "load_1min": loads}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=50, help="sampling steps of the per-image figure")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", default="torch,onnxruntime")
    p.add_argument("--model", default="dit-xl-2", choices=("dit-xl-2", "dit-tiny"))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = random_dit_model(args.model)
    cfg, sampler = model.cfg, Sampler("ddpm", args.steps)
    results = {"machine": describe_machine(), "threads": args.threads, "batch": 1, "steps": args.steps, "arms": {}}
    with torch.no_grad():
        loads = [load_average()]
        w0, c0 = time.perf_counter(), time.process_time()
        decode(model.vae, torch.randn(1, 4, cfg.input_size, cfg.input_size))
        results["vae_decode"] = {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0,
                                 "load_1min": loads + [load_average()]}
        print(f"vae decode: {results['vae_decode']}", flush=True)
        backends = args.backends.split(",")
        with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
            for name in backends:
                if name == "onnxruntime":
                    export_dit(model, Path(scratch) / "export")
                    model.dit.to("meta")            # one copy of the weights at a time
                    gc.collect()
                    backend = OrtStep(model, export_dir=Path(scratch) / "export", threads=args.threads)
                else:
                    backend = TorchStep(model)
                for arm, plan in arms(cfg).items():
                    r = time_steps(backend, sampler, plan, args.reps, args.warmup, cfg)
                    results["arms"][f"{name}/{arm}"] = r
                    print(f"{name}/{arm}: {r}", flush=True)
                del backend
                gc.collect()
    for key, r in results["arms"].items():
        name = key.split("/")[0]
        plain = results["arms"][f"{name}/plain"]
        if key.endswith("/plain"):
            r["per_image_wall_s"] = args.steps * r["wall_s"] + results["vae_decode"]["wall_s"]
        else:
            r["per_image_wall_s"] = plain["wall_s"] + (args.steps - 1) * r["wall_s"] + results["vae_decode"]["wall_s"]
            r["step_vs_plain"] = r["wall_s"] / plain["wall_s"]
            r["cpu_vs_plain"] = r["cpu_s"] / plain["cpu_s"]
    write_atomic(out.with_suffix(".json"), (json.dumps(results, indent=2) + "\n").encode())
    write_atomic(out.with_suffix(".md"), markdown(results).encode())
    print(markdown(results))


def markdown(results) -> str:
    decode = results["vae_decode"]
    lines = [f"DiT-XL/2 (random weights), batch 1, {results['steps']} steps per image, {results['threads']} threads, "
             f"{results['machine'].get('cpu', 'CPU')}", "",
             "| backend / mask | s per step (wall) | CPU s per step | vs plain (wall / CPU) | s per image (wall) | 1-min load during |",
             "|---|---|---|---|---|---|"]
    for key, r in results["arms"].items():
        ratio = f"{r['step_vs_plain']:.2f}x / {r['cpu_vs_plain']:.2f}x" if "step_vs_plain" in r else "-"
        load = f"{min(r['load_1min'])}-{max(r['load_1min'])}"
        lines.append(f"| {key} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {ratio} | {r['per_image_wall_s']:.0f} | {load} |")
    lines += ["", f"VAE decode (256 px): {decode['wall_s']:.1f} s wall, {decode['cpu_s']:.1f} CPU s, load "
              f"{min(decode['load_1min'])}-{max(decode['load_1min'])}. Per image = plain first step + "
              f"{results['steps'] - 1} amplified steps + decode."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
