"""Why bf16 changes whole amplified sets: the fp32 reference's top-k boundary against bf16 rounding.

d16 with seeded random weights, amplification at block 14 (beta 5, rho 0.5), the forced path of
`hieramp.compare`. Records, at every op call of the fp32 reference, the relative gap between the
k-th and (k+1)-th class-token saliency, and the share of calls whose gap is below one bf16
rounding step (2^-8); then compares torch bf16 with the reference, as is and with some blocks'
matrix products kept in float32: whole-set agreement, membership agreement, forced-path argmax.

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/amp_set_boundary.py --fp32-blocks none,14,12-14 \\
        --out benchmarks/results/amp-set-boundary
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from hieramp import AmpConfig, Generator
from hieramp.bench.machine import describe_machine, load_average
from hieramp.compare import Tolerances, compare
from hieramp.model.amp_op import k_sel, restricted_logits, saliency
from hieramp.model.presets import random_model

AMP = AmpConfig(layers=(14,))
NO_GATES = Tolerances(None, None, 0.0, 0.0, 0.0, 0.0)
BF16_STEP = 2.0 ** -8


def boundary_gaps(model, labels) -> list:
    """Relative gap (s_k - s_k+1) / s_k of every (row, op call) of the fp32 reference's free run."""
    gen, gaps = Generator(model), []
    op = gen.backend.amp_op

    def recording_op(q, k, v, beta, rho, softmax_scale, mode):
        s = saliency(restricted_logits(q, k, softmax_scale))
        kk = k_sel(rho, s.shape[-1])
        if kk < s.shape[-1]:
            top = torch.sort(s, dim=-1, descending=True).values
            gaps.extend(((top[:, kk - 1] - top[:, kk]) / top[:, kk - 1]).tolist())
        return op(q, k, v, beta, rho, softmax_scale, mode)

    gen.backend.amp_op = recording_op
    gen.run(labels, seed=0, amp=AMP)
    return gaps


def blocks(text: str) -> list:
    if text == "none":
        return []
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def bf16_agreement(model, labels, fp32_blocks) -> dict:
    gen = Generator(model, precision="bf16")
    for b in fp32_blocks:
        block = gen.backend.var.blocks[b]
        for layer in (block.attn.mat_qkv, block.attn.proj, block.ffn.fc1, block.ffn.fc2):
            layer.float()
    start = time.perf_counter()
    r = compare(gen, labels, seed=0, amp=AMP, tolerances=NO_GATES, progress=False)
    return {"fp32_blocks": fp32_blocks, "sets_equal": r.amp_set_agreement, "memberships_equal": r.amp_member_agreement,
            "argmax_agreement": r.argmax_agreement, "sets_equal_per_scale": [s.amp_set_agreement for s in r.scales],
            "seconds": round(time.perf_counter() - start, 1), "load_1min": load_average()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=16, help="labels 0, 63, 126, ...")
    p.add_argument("--fp32-blocks", default="none,14", help="variants: none, a block, or a range lo-hi")
    p.add_argument("--out", required=True, help="output path without extension: OUT.json and OUT.md")
    args = p.parse_args()
    torch.manual_seed(0)
    model = random_model("d16")
    labels = [i * 63 % 1000 for i in range(args.images)]
    gaps = boundary_gaps(model, labels)
    result = {"machine": describe_machine(), "labels": labels, "op_calls": len(gaps),
              "gap_median": statistics.median(gaps), "gap_min": min(gaps),
              "share_below_bf16_step": sum(g < BF16_STEP for g in gaps) / len(gaps),
              "variants": [bf16_agreement(model, labels, blocks(v)) for v in args.fp32_blocks.split(",")]}
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"d16 random init, amplification at block 14 (rho 0.5), {len(labels)} images, {result['machine']['cpu']}, "
             f"{result['machine']['date']}", "",
             f"fp32 reference, {len(gaps)} (row, op call) boundaries: relative gap between the k-th and (k+1)-th saliency "
             f"median {result['gap_median']:.2e}, min {result['gap_min']:.2e}; below one bf16 step (2^-8): "
             f"{result['share_below_bf16_step']:.1%}.", "",
             "| torch bf16, blocks kept float32 | whole sets equal | memberships equal | forced argmax | seconds |",
             "|---|---|---|---|---|"]
    for v in result["variants"]:
        kept = ",".join(map(str, v["fp32_blocks"])) or "none"
        lines.append(f"| {kept} | {v['sets_equal']:.2%} | {v['memberships_equal']:.3%} | {v['argmax_agreement']:.3%} "
                     f"| {v['seconds']} |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
