"""Seconds per image of hieramp's paths against the fp32 torch reference and the public VAR sampler.

Depth-16 shape with seeded random weights (`d16 --random-init`), the same weights loaded into the
public VAR (FoundationVision/VAR `autoregressive_infer_cfg`, imported at run time from a checkout
OUTSIDE this project: --var-src; nothing of it is kept here). Arms, interleaved in every round
(A B C ... A B C ...), so load drift hits them alike; ratios are to the fp32 torch reference of the
same round set:

- torch-fp32      the reference (amplification on: block 14, beta 5, rho 0.5)
- torch-bf16      torch backend, --precision bf16
- torch-bf16-compile  the same with --compile (its compilation runs in the warmup round)
- ort-int8        ONNX Runtime on an export with --quantize
- ort-fp16        ONNX Runtime on an export with --dtype fp16 (not in the default arms)
- public-var      the public sampler, fp32, plain VAR (no class tokens, no amplification), cfg 4,
                  top-k 900, top-p 0.95, as its README samples

    git --git-dir=/work/.mirror/FoundationVision+VAR/repo archive HEAD | tar -x -C /tmp/var-public
    OMP_NUM_THREADS=2 python benchmarks/vs_public_var.py --var-src /tmp/var-public --batch-sizes 1,8 --rounds 2 \
        --out benchmarks/results/vs-public-var
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from hieramp import AmpConfig, Generator
from hieramp.bench.machine import describe_machine, load_average
from hieramp.export.exporter import export_model
from hieramp.model.presets import random_model

AMP = AmpConfig(mode="logit", beta=5.0, rho=0.5, layers=(14,))
SAMPLING = dict(cfg=4.0, top_k=900, top_p=0.95)


def public_var(var_src: Path, ours):
    """The public VAR and VQVAE at depth 16 with our random weights (class tokens left out)."""
    sys.path.insert(0, str(var_src))
    from models import build_vae_var                  # noqa: E402 (from the checkout, at run time)
    vae, var = build_vae_var(device="cpu", depth=16, shared_aln=False, attn_l2_norm=True,
                             flash_if_available=False, fused_if_available=False)
    state = {k: v for k, v in ours.var.state_dict().items() if not k.startswith("cls_tokens.")}
    var.load_state_dict(state, strict=True)
    vae.load_state_dict(ours.vae.state_dict(), strict=True)
    return var.eval()


def arms(names, model, var_src, export_dir, threads):
    out = {}
    for name in names:
        if name == "torch-fp32":
            gen = Generator(model, backend="torch")
        elif name == "torch-bf16":
            gen = Generator(model, backend="torch", precision="bf16")
        elif name == "torch-bf16-compile":
            gen = Generator(model, backend="torch", precision="bf16", compile=True)
        elif name in ("ort-int8", "ort-fp16"):
            export = Path(f"{export_dir}-{name}")
            if not (export / "manifest.json").is_file():
                export_model(model, export, amp_layers=AMP.layers, quantize=name == "ort-int8",
                             dtype="fp16" if name == "ort-fp16" else "fp32", progress=False)
            gen = Generator(model, backend="onnxruntime", export_dir=export, threads=threads)
        elif name == "public-var":
            var = public_var(Path(var_src), model)
            out[name] = lambda labels, seed, var=var: var.autoregressive_infer_cfg(
                len(labels), torch.tensor(labels), g_seed=seed, more_smooth=False, **SAMPLING)
            continue
        else:
            raise SystemExit(f"unknown arm {name}")
        out[name] = lambda labels, seed, gen=gen: gen.run(labels, seed=seed, amp=AMP, **SAMPLING)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--var-src", required=True, help="a checkout of FoundationVision/VAR outside this project")
    p.add_argument("--arms", default="torch-fp32,torch-bf16,torch-bf16-compile,ort-int8,public-var")
    p.add_argument("--batch-sizes", default="1,8")
    p.add_argument("--rounds", type=int, default=2, help="measured rounds per batch size")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before the first batch size's (compilation runs there)")
    p.add_argument("--export-dir", default="/tmp/hieramp-d16", help="exports go to EXPORT_DIR-ARM")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of torch and ONNX Runtime")
    p.add_argument("--out", required=True, help="output path without extension: OUT.json and OUT.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = random_model("d16")
    runners = arms(args.arms.split(","), model, args.var_src, args.export_dir, args.threads)
    results, loads = {}, []
    for bi, batch in enumerate(int(b) for b in args.batch_sizes.split(",")):
        labels = [i % 1000 for i in range(0, 97 * batch, 97)]
        warmup = args.warmup if bi == 0 else 0
        for rnd in range(-warmup, args.rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                with torch.no_grad():
                    run(labels, abs(rnd))
                seconds = (time.perf_counter() - start) / batch
                if rnd >= 0:                                 # negative rounds warm up (and compile)
                    results.setdefault(f"{name}@{batch}", []).append(seconds)
                print(f"batch {batch} round {rnd} {name}: {seconds:.2f} s/img, load {load_average()}", flush=True)
            loads.append(load_average())
    rows = []
    for key, samples in results.items():
        name, batch = key.split("@")
        ref = statistics.median(results[f"torch-fp32@{batch}"]) if f"torch-fp32@{batch}" in results else None
        median = statistics.median(samples)
        rows.append({"arm": name, "batch_size": int(batch), "s_per_img": samples, "s_per_img_median": median,
                     "speedup_vs_torch_fp32": ref / median if ref else None})
    machine = describe_machine()
    Path(args.out + ".json").write_text(json.dumps({"machine": machine, "load_1min_per_round": loads, "rows": rows}, indent=2) + "\n")
    lines = [f"{machine['cpu']} ({machine['cpu_cores']} cores), {machine['date']}; d16 random init; "
             f"{args.threads} intra-op thread(s); 1-minute load per round: {loads}. {args.warmup} warmup round(s) before the first batch size, then "
             f"{args.rounds} measured per batch size.", "",
             "| batch | arm | s/img (median) | rounds | x torch fp32 |", "|---|---|---|---|---|"]
    for r in rows:
        ratio = "-" if r["speedup_vs_torch_fp32"] is None else f"{r['speedup_vs_torch_fp32']:.2f}x"
        lines.append(f"| {r['batch_size']} | {r['arm']} | {r['s_per_img_median']:.2f} | "
                     f"{', '.join(f'{s:.2f}' for s in r['s_per_img'])} | {ratio} |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
