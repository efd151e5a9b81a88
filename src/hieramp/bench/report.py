"""A BenchReport as JSON, as Markdown tables (every backend a column, with its ratio to torch)
and as a PNG plot."""
import io
import json

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from .run import REFERENCE
from .timing import stage_names

BACKEND_COLORS = {"torch": "#4c72b0", "onnxruntime": "#dd8452", "tensorrt": "#55a868"}
VARIANT_STYLES = {"base": ("o", ":"), "cls": ("s", "--"), "amp": ("^", "-")}
STAGE_COLORS = {"steps": "#4c72b0", "sample": "#dd8452", "update": "#55a868", "decode": "#c44e52", "begin + other": "#8c8c8c"}


def _color(column: str) -> str:
    """Backend colour; a reduced-precision column of the same backend in a lighter shade."""
    base = BACKEND_COLORS[column.split()[0]]
    return base if " " not in column else base + "99"


def to_json_text(report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def _seconds(x: float) -> str:
    return f"{x:.4g}"


def _table(header, rows) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _backends(report):
    return report.settings["backends"]


def _rows(report):
    return [(b, v) for b in report.settings["batch_sizes"] for v in report.settings["variants"]]


def _cell(report, backend, variant, batch, fmt, with_ratio):
    if backend in report.unavailable:
        return "unavailable"
    r = report.result(backend, variant, batch)
    text = fmt(r)
    if with_ratio and backend != REFERENCE:
        text += f" ({report.ratio_to_reference(r):.2f}x)"
    return text


def _metric_table(report, fmt, with_ratio):
    """One row per (batch, variant), one column per backend; `fmt` turns an ArmResult into the cell."""
    header = ["batch", "variant", *_backends(report)]
    rows = [(batch, variant, *(_cell(report, b, variant, batch, fmt, with_ratio) for b in _backends(report)))
            for batch, variant in _rows(report)]
    return _table(header, rows)


def _overhead_table(report):
    def pct(batch, backend, variant, over):
        median, best = (report.overhead(backend, batch, variant, over, stat) for stat in ("median", "best"))
        return "-" if median is None else f"{median:+.1%} (best: {best:+.1%})"
    backends = [b for b in _backends(report) if b not in report.unavailable]
    rows = [(batch, b, pct(batch, b, "cls", "base"), pct(batch, b, "amp", "cls"))
            for batch in report.settings["batch_sizes"] for b in backends]
    return _table(["batch", "backend", "cls over base", "amp over cls"], rows)


def _stage_table(report, batch):
    arms = [r for r in report.results if r.batch_size == batch]
    num_scales = sum(stage.startswith("step") for stage in arms[0].stages)
    rows = [(stage, *(_seconds(r.stages[stage]) for r in arms)) for stage in stage_names(num_scales)]
    return _table(["stage", *(f"{r.backend} {r.variant}" for r in arms)], rows)


def markdown(report) -> str:
    m, s = report.machine, report.settings
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"## hieramp bench: {s['model']}, {s['image_size']} px",
        "",
        f"Machine: {m['cpu']} ({m['cpu_cores']} cores; intra-op threads: {s['threads']}), {m['memory_gb']} GB{gpu}; "
        f"{m['os']}; {versions}; {m['date']}. 1-minute load average before / after: "
        f"{m['load_1min_before']} / {m['load_1min_after']}.",
        "",
        f"{s['warmup']} warmup and {s['iters']} measured rounds per batch size; each round runs every "
        f"(variant, backend) once, interleaved. Variants: " + "; ".join(f"`{k}` {v}" for k, v in s["variants"].items()) + ".",
    ]
    if s["variants_skipped"]:
        lines.append("Skipped: " + "; ".join(f"`{k}`: {v}" for k, v in s["variants_skipped"].items()) + ".")
    lines += ["", "Seconds per image, median (min-max); in brackets: times faster than torch.", ""]
    lines += _metric_table(report, lambda r: f"{_seconds(r.median)} ({_seconds(r.best)}-{_seconds(max(r.s_per_img))})",
                           with_ratio=True)
    lines += [f"\n`{b}` unavailable: {why}" for b, why in report.unavailable.items()]
    lines += ["", "Images per second (median); in brackets: ratio to torch.", ""]
    lines += _metric_table(report, lambda r: f"{r.img_per_s:.4g}", with_ratio=True)
    kinds = "; ".join(f"{b}: {k}" for b, k in s["peak_mem"].items())
    lines += ["", f"Peak memory, MB ({kinds}).", ""]
    lines += _metric_table(report, lambda r: f"{r.peak_mem_mb:.0f}", with_ratio=False)
    lines += ["", "Cost of class tokens and of amplification: extra time per image, of the medians (of the best rounds).", ""]
    lines += _overhead_table(report)
    for batch in s["batch_sizes"]:
        lines += ["", f"Stages at batch {batch}: median seconds per image (`other`: noise, transfers, Python).", ""]
        lines += _stage_table(report, batch)
    return "\n".join(lines) + "\n"


def _stage_groups(stages):
    steps = sum(v for k, v in stages.items() if k.startswith("step"))
    return {"steps": steps, "sample": stages["sample"], "update": stages["update"], "decode": stages["decode"],
            "begin + other": stages["begin"] + stages["other"]}


def plot_png(report) -> bytes:
    """Throughput per batch size, the stage breakdown at the smallest batch, peak memory at the largest."""
    s = report.settings
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    throughput, stages, memory = fig.subplots(1, 3)
    for backend in _backends(report):
        for variant in s["variants"]:
            arms = [r for r in report.results if (r.backend, r.variant) == (backend, variant)]
            if not arms:
                continue
            x = [r.batch_size for r in arms]
            y = [r.img_per_s for r in arms]
            err = [[yi - 1 / max(r.s_per_img) for yi, r in zip(y, arms)], [1 / min(r.s_per_img) - yi for yi, r in zip(y, arms)]]
            marker, line = VARIANT_STYLES[variant]
            throughput.errorbar(x, y, yerr=err, marker=marker, ls=line, color=_color(backend), capsize=3,
                                label=f"{backend} {variant}")
    throughput.set_xscale("log", base=2)
    throughput.set_yscale("log")
    throughput.yaxis.set_major_formatter(ScalarFormatter())
    throughput.yaxis.set_minor_formatter(NullFormatter())
    throughput.set_xticks(s["batch_sizes"], [str(b) for b in s["batch_sizes"]])
    throughput.set_xlabel("batch size")
    throughput.set_ylabel("images / s (median, bars: min-max)")
    throughput.grid(alpha=0.3, which="both")
    throughput.legend(fontsize=7)

    for ax, batch, title in ((stages, min(s["batch_sizes"]), "seconds / image by stage"),
                             (memory, max(s["batch_sizes"]), "peak memory, MB")):
        arms = [r for r in report.results if r.batch_size == batch]
        labels = [f"{r.backend}\n{r.variant}" for r in arms]
        if ax is stages:
            left = [0.0] * len(arms)
            for group, color in STAGE_COLORS.items():
                widths = [_stage_groups(r.stages)[group] for r in arms]
                ax.barh(labels, widths, left=left, color=color, label=group)
                left = [a + b for a, b in zip(left, widths)]
            ax.legend(fontsize=7)
        else:
            ax.barh(labels, [r.peak_mem_mb for r in arms], color=[_color(r.backend) for r in arms])
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{title}, batch {batch}", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    missing = "; ".join(f"{b} unavailable: {why}" for b, why in report.unavailable.items())
    fig.suptitle(f"hieramp bench: {s['model']}, {report.machine['cpu']} ({report.machine['cpu_cores']} cores)"
                 + (f", {report.machine['gpu']}" if report.machine.get("gpu") else "") + (f"\n{missing}" if missing else ""),
                 fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
