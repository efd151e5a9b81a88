"""What amplification adds to a step: the top-k bias attention op against the scale-restricted
attention it replaces, at one model's shapes, scale by scale, as a share of the step.

End-to-end `hieramp bench` timings on a shared machine move by more than the 2 % this is about;
timing the op and its replacement back to back, many times, isolates the difference.

    .venv/bin/python benchmarks/amp_op_cost.py --model d16 --batch-size 1 --out benchmarks/results/amp_op_cost-cpu
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from hieramp.bench.machine import describe_machine, load_average
from hieramp.bench.timing import TimedBackend
from hieramp.bench.variants import paper_amp
from hieramp.model.amp_op import scale_restricted_attention, topk_bias_attention
from hieramp.model.presets import random_model
from hieramp.model.sampling import batch_noise
from hieramp.runtime.backends.torch_backend import TorchBackend
from hieramp.files import write_atomic
from hieramp.model.sampling import SamplingParams
from hieramp.runtime.loop import run_scales


def op_seconds(cfg, batch, si, reps, beta=5.0, rho=0.5):
    """Best-of-`reps` seconds of the op and of plain scale-restricted attention, alternating, at scale si
    (the best call is the one least disturbed by other processes)."""
    H, D = cfg.num_heads, cfg.head_dim
    n, P = cfg.patch_nums[si] ** 2, cfg.scale_offsets[si]
    gen = torch.Generator().manual_seed(si)
    q = torch.randn(2 * batch, H, n + 1, D, generator=gen)                     # (2B, H, Lq, D)
    k = torch.randn(2 * batch, H, P + n + 1, D, generator=gen)                 # (2B, H, P + Lq, D)
    v = torch.randn(2 * batch, H, P + n + 1, D, generator=gen)
    calls = {"amp": lambda: topk_bias_attention(q, k, v, beta, rho, 1.0), "plain": lambda: scale_restricted_attention(q, k, v, 1.0)}
    times = {name: [] for name in calls}
    with torch.no_grad():
        for _ in range(reps):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def step_seconds(model, batch, rounds):
    """Median seconds of each scale's step with class tokens and amplification off (the `cls` variant)."""
    backend = TorchBackend(model)
    labels = list(range(batch))
    per_round = []
    for rnd in range(rounds):
        timed = TimedBackend(backend)
        run_scales(timed, torch.tensor(labels), batch_noise(rnd, labels, [0] * batch, model.cfg.patch_nums), SamplingParams(), None)
        per_round.append(timed.seconds)
    total = statistics.median(sum(r.values()) for r in per_round)
    steps = [statistics.median(r[f"step {si}"] for r in per_round) for si in range(model.cfg.num_scales)]
    return steps, total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="d16", help="architecture preset, random weights (tiny, d16, d20, d24, d30)")
    p.add_argument("--batch-size", type=int, default=1, help="images per batch (the op runs on twice as many: guidance)")
    p.add_argument("--reps", type=int, default=50, help="timed calls of each attention per scale")
    p.add_argument("--rounds", type=int, default=1, help="full generations timed for the step times")
    p.add_argument("--out", required=True, help="output path without suffix: writes OUT.json and OUT.md")
    args = p.parse_args()

    model = random_model(args.model)
    cfg = model.cfg
    layers = paper_amp(cfg.depth).layers
    load_before = load_average()
    steps, total = step_seconds(model, args.batch_size, args.rounds)
    rows = []
    for si in range(1, cfg.num_scales):
        op = op_seconds(cfg, args.batch_size, si, args.reps)
        extra = (op["amp"] - op["plain"]) * len(layers)
        rows.append({"scale": si, "tokens": cfg.patch_nums[si] ** 2, "op_s": op["amp"], "plain_s": op["plain"],
                     "extra_s": extra, "step_s": steps[si], "extra_share_of_step": extra / steps[si]})
    extra_total = sum(r["extra_s"] for r in rows)
    report = {"machine": dict(describe_machine(), load_1min_before=load_before, load_1min_after=load_average()),
              "settings": {"model": f"{args.model} (random init)", "batch_size": args.batch_size, "amp_layers": list(layers),
                           "reps": args.reps, "rounds": args.rounds, "op": "reference (hieramp.model.amp_op), float32"},
              "scales": rows, "extra_s_per_batch": extra_total, "generation_s_per_batch": total,
              "extra_share_of_generation": extra_total / total,
              "extra_share_of_steps": extra_total / sum(steps)}
    m = report["machine"]
    lines = [f"## Amplification op cost: {args.model}, batch {args.batch_size}, amplified blocks {list(layers)}", "",
             f"Machine: {m['cpu']} ({m['cpu_cores']} cores), {m['memory_gb']} GB, torch {m['versions']['torch']}; "
             f"{m['date']}; 1-minute load average before / after: {m['load_1min_before']} / {m['load_1min_after']}.", "",
             "Reference op vs the scale-restricted attention it replaces (best of "
             f"{args.reps} alternating calls each); step: the `cls` step of that scale in a full generation.", "",
             "| scale | tokens | op ms | plain ms | extra ms | step s | extra / step |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['scale']} | {r['tokens']} | {r['op_s'] * 1e3:.3f} | {r['plain_s'] * 1e3:.3f} | {r['extra_s'] * 1e3:.3f} | "
              f"{r['step_s']:.3f} | {r['extra_share_of_step']:.3%} |" for r in rows]
    lines += ["", f"Extra per batch: {extra_total * 1e3:.1f} ms = {report['extra_share_of_steps']:.3%} of the steps, "
                  f"{report['extra_share_of_generation']:.3%} of a whole generation ({total:.1f} s)."]
    out = Path(args.out)
    write_atomic(out.with_suffix(".json"), (json.dumps(report, indent=2) + "\n").encode())
    write_atomic(out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
