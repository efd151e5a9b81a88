"""`hieramp bench`: seconds per image, images per second and peak memory per backend, batch size
and variant (base VAR, + class tokens, + amplification; DiT: base, + amplification), with torch
as the reference column."""
from ..bench import BenchSettings, ModelSpec, markdown, plot_png, run_bench, to_json_text
from ..bench.variants import VARIANTS
from ..errors import UserError
from ..precision import precision_list
from .common import add_model_options, count, int_list, output_file, threads, write_output

MAX_ROUNDS = 10_000


def add_parser(subparsers):
    p = subparsers.add_parser("bench", help="latency, throughput and memory per backend, batch size and variant",
                              description=__doc__)
    add_model_options(p)
    p.add_argument("--random-init", action="store_true",
                   help="benchmark an architecture preset (d16, d20, d24, d30, dit-xl-2) with random weights, no checkpoint needed")
    p.add_argument("--steps", type=count("denoising steps", 1, 1000), help="DiT: denoising steps per image (default 50)")
    p.add_argument("--backends", default="torch",
                   help="comma-separated: torch (always included, the reference), onnxruntime, tensorrt; "
                        "one that cannot run here is reported as unavailable")
    p.add_argument("--batch-sizes", type=int_list("batch sizes"), default=[1],
                   help="comma-separated batch sizes, e.g. 1,8,64")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma-separated: base (no class tokens), cls (class tokens), amp (class tokens + amplification); "
                        "DiT: base and amp")
    p.add_argument("--precision", default="fp32",
                   help="comma-separated: fp32, bf16, fp16 (GPU); each backend runs in each, one column per pair "
                        "(torch fp32 stays the reference); onnxruntime runs an export of that dtype")
    p.add_argument("--warmup", type=count("warmup rounds", 0, MAX_ROUNDS), default=1,
                   help="untimed rounds per batch size before the measured ones")
    p.add_argument("--iters", type=count("measured rounds", 1, MAX_ROUNDS), default=5,
                   help="measured rounds per batch size (medians and spread over them)")
    p.add_argument("--threads", type=threads,
                   help="intra-op threads of torch and ONNX Runtime in every backend (default: their own choice, the core count)")
    p.add_argument("--export-dir", help="keep ONNX exports here and reuse them in later runs (default: a temporary directory)")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--markdown", help="also write the printed Markdown tables to this file")
    p.add_argument("--plot", default="bench.png", help="PNG plot of throughput, stage breakdown and memory (default bench.png)")
    p.set_defaults(run=run)


def _names(text: str, flag: str):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"{flag} is empty: give a comma-separated list")
    return tuple(names)


def run(args):
    settings = BenchSettings(
        spec=ModelSpec(args.model, args.vae, args.random_init, args.trust_checkpoint),
        backends=_names(args.backends, "--backends"),
        batch_sizes=tuple(args.batch_sizes),
        variants=_names(args.variants, "--variants"),
        warmup=args.warmup, iters=args.iters, device=args.device, export_dir=args.export_dir,
        threads=args.threads, precisions=precision_list(args.precision), steps=args.steps,
    ).checked()
    outputs = [output_file(f) for f in (args.json, args.markdown, args.plot) if f]   # before the long run
    report = run_bench(settings)
    table = markdown(report)
    print(table)
    if args.json:
        write_output(args.json, to_json_text(report).encode())
    if args.markdown:
        write_output(args.markdown, table.encode())
    write_output(args.plot, plot_png(report))
    print(f"wrote {', '.join(str(p) for p in outputs)}")
