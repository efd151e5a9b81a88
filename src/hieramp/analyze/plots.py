"""Per-scale curves per schedule, in the manner of the paper's entropy and coverage figures:
left the class average of the metric, right its change over the `none` baseline, with the
coarse, mid and fine stages shaded."""
import io

import numpy as np
from matplotlib.figure import Figure

TITLES = {"entropy": "Token entropy (bits) per scale", "coverage": "Codebook coverage (share of codes used) per scale"}
AXIS_LABELS = {"entropy": "entropy (bits)", "coverage": "coverage"}
STAGE_SHADES = {"coarse": "#4c72b0", "mid": "#55a868", "fine": "#c44e52"}


def _shade_stages(ax, stages):
    for name, scales in stages.items():
        if scales:
            ax.axvspan(min(scales) - 0.5, max(scales) + 0.5, color=STAGE_SHADES[name], alpha=0.08, lw=0)
            ax.text((min(scales) + max(scales)) / 2, 1.0, name, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8, color=STAGE_SHADES[name])


def _scale_axis(ax, patch_nums):
    ax.set_xticks(range(len(patch_nums)))
    ax.set_xticklabels([f"{s}\n{pn}x{pn}" for s, pn in enumerate(patch_nums)], fontsize=7)
    ax.set_xlabel("scale (token map)")
    ax.grid(alpha=0.3)


def metric_plot(analysis, metric: str) -> bytes:
    """PNG bytes of one metric's figure."""
    values = analysis.values(metric)
    baseline = values[analysis.schedules[0].name]                          # (C, S)
    scales = np.arange(len(analysis.patch_nums))
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    absolute, change = fig.subplots(1, 2)
    for s in analysis.schedules:
        label = "none (no amplification)" if not s.amplifies else f"beta {s.name}"
        absolute.plot(scales, values[s.name].mean(axis=0), marker="o", ms=3, label=label)   # (S,)
        change.plot(scales, (values[s.name] - baseline).mean(axis=0), marker="o", ms=3, label=label)
    change.axhline(0, color="black", lw=0.8)
    for ax in (absolute, change):
        _shade_stages(ax, analysis.stages)
        _scale_axis(ax, analysis.patch_nums)
    absolute.set_ylabel(f"{AXIS_LABELS[metric]}, mean over classes")
    change.set_ylabel(f"{AXIS_LABELS[metric]}: change over none")
    absolute.legend(fontsize=8)
    fig.suptitle(f"{TITLES[metric]}: {len(analysis.classes)} classes x {analysis.ipc} images, "
                 f"{analysis.settings['model']}", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()
