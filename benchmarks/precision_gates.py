"""Measure what `hieramp compare` gates per precision, to calibrate `PRECISION_TOLERANCES`.

For each model (tiny, the bundled digits model, d16 with random weights) and each reduced-precision
path that runs on this machine (torch bf16; ONNX Runtime fp16 export; ONNX Runtime fp32 export with
int8 linear layers), run `hieramp.compare.compare` against the fp32 torch reference with no gates,
and record the worst values: relative logit error, argmax agreement on the forced path, amplified-set
agreement, forced-path PSNR and free-sampling token agreement. Writes JSON and a Markdown table.

    OMP_NUM_THREADS=2 python benchmarks/precision_gates.py --out benchmarks/results/precision-gates
"""
import argparse
import json
import time
from pathlib import Path

from hieramp import AmpConfig, Generator, resolve_model
from hieramp.bench.machine import describe_machine, load_average
from hieramp.compare import Tolerances, compare
from hieramp.export.exporter import export_model
from hieramp.model.amp_config import default_amp_layers

MODELS = {"tiny": ("tiny", list(range(10))), "digits": ("default", list(range(10))), "d16": ("d16", [0, 1, 2, 3])}
PATHS = ("torch-bf16", "onnxruntime-fp16", "onnxruntime-int8")
NO_GATES = Tolerances(None, None, 0.0, 0.0, 0.0, 0.0)


def candidate(model, path, export_root: Path):
    if path == "torch-bf16":
        return Generator(model, backend="torch", precision="bf16")
    dtype, quantize = ("fp16", False) if path.endswith("fp16") else ("fp32", True)
    out = export_root / f"{model.source.fingerprint}-{path}"
    if not (out / "manifest.json").is_file():
        export_model(model, out, dtype=dtype, quantize=quantize, progress=False)
    return Generator(model, backend="onnxruntime", export_dir=out)


def measure(name, path, export_root):
    preset, labels = MODELS[name]
    model = resolve_model(preset, random_init=True)
    amp = AmpConfig(layers=default_amp_layers(model.cfg.depth)) if model.cfg.cls_token_scales else AmpConfig(enabled=False)
    start = time.perf_counter()
    result = compare(candidate(model, path, export_root), labels, seed=0, amp=amp, tolerances=NO_GATES, progress=False)
    return {
        "model": name, "path": path, "labels": labels, "seconds": round(time.perf_counter() - start, 1),
        "load_1min": load_average(),
        "max_rel_logit_error": max(s.max_rel_error for s in result.scales),
        "max_abs_logit_error": max(s.max_abs_error for s in result.scales),
        "argmax_agreement": result.argmax_agreement,
        "amp_set_agreement": result.amp_set_agreement,
        "amp_member_agreement": result.amp_member_agreement,
        "min_psnr_db": min(result.psnr_db),
        "free_token_agreement": result.token_agreement,
        "scales": [vars(s) for s in result.scales],
    }


def markdown(rows, machine) -> str:
    lines = [f"Machine: {machine['cpu']} ({machine['cpu_cores']} cores), {machine['date']}; 1-minute load per row.", "",
             "| model | path | max rel logit error | argmax agreement (forced) | amplified sets equal (memberships) "
             "| min PSNR forced (dB) | free-sampling tokens equal | load |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sets = "-" if r["amp_set_agreement"] is None else f"{r['amp_set_agreement']:.2%} ({r['amp_member_agreement']:.3%})"
        lines.append(f"| {r['model']} | {r['path']} | {r['max_rel_logit_error']:.2e} | {r['argmax_agreement']:.2%} | {sets} "
                     f"| {r['min_psnr_db']:.1f} | {r['free_token_agreement']:.2%} | {r['load_1min']} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny,digits,d16")
    p.add_argument("--paths", default=",".join(PATHS))
    p.add_argument("--exports", default="/tmp/hieramp-precision-exports", help="where exports are kept between runs")
    p.add_argument("--out", required=True, help="output path without extension: writes OUT.json and OUT.md")
    args = p.parse_args()
    rows = []
    for name in args.models.split(","):
        for path in args.paths.split(","):
            rows.append(measure(name, path, Path(args.exports)))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "scales"}), flush=True)
    machine = describe_machine()
    Path(args.out + ".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    Path(args.out + ".md").write_text(markdown(rows, machine))


if __name__ == "__main__":
    main()
