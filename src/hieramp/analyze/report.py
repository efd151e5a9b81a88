"""The analysis written out: JSON (everything), CSV (per scale; rise shares per stage), PNG plots."""
import csv
import io
import json
from pathlib import Path

from ..files import write_atomic
from .run import METRICS

ENTROPY_UNIT = "bits"


def _plan_fields(plan):
    if plan is None:
        return {"beta_per_scale": None, "rho_per_scale": None, "amp_mode": None, "amp_layers": None, "amp_scales": None}
    return {"beta_per_scale": list(plan.beta), "rho_per_scale": list(plan.rho), "amp_mode": plan.mode,
            "amp_layers": list(plan.layers), "amp_scales": list(plan.scales)}


def report_dict(analysis) -> dict:
    rises = analysis.rise_shares()
    schedules = []
    for s in analysis.schedules:
        values = {m: analysis.values(m)[s.name] for m in METRICS}
        schedules.append({
            "name": s.name,
            "beta": None if s.beta is None else list(s.beta),
            **_plan_fields(analysis.plans[s.name]),
            "mean_over_classes": {m: values[m].mean(axis=0).tolist() for m in METRICS},
            "per_class": {str(c): {m: values[m][row].tolist() for m in METRICS} for row, c in enumerate(analysis.classes)},
            "rise_shares": rises.get(s.name),
        })
    return {
        "entropy_unit": ENTROPY_UNIT,
        "settings": analysis.settings,
        "classes": analysis.classes,
        "ipc": analysis.ipc,
        "patch_nums": list(analysis.patch_nums),
        "vocab_size": analysis.vocab_size,
        "stages": {name: list(scales) for name, scales in analysis.stages.items()},
        "baseline": analysis.schedules[0].name,
        "schedules": schedules,
    }


def _csv_bytes(header, rows) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def per_scale_csv(analysis) -> bytes:
    rows = [(s.name, c, si, analysis.ipc * pn * pn, analysis.entropy[s.name][row, si], analysis.coverage[s.name][row, si])
            for s in analysis.schedules for row, c in enumerate(analysis.classes)
            for si, pn in enumerate(analysis.patch_nums)]
    return _csv_bytes(("schedule", "class", "scale", "tokens", f"entropy_{ENTROPY_UNIT}", "coverage"), rows)


def rise_shares_csv(analysis) -> bytes:
    rows = []
    for name, by_metric in analysis.rise_shares().items():
        for stage, scales in analysis.stages.items():
            shares = ["" if by_metric[m][stage] is None else by_metric[m][stage] for m in METRICS]
            rows.append((name, stage, " ".join(map(str, scales)), *shares))
    return _csv_bytes(("schedule", "stage", "scales", "entropy_rise_share", "coverage_rise_share"), rows)


def write_report(analysis, out) -> list:
    """Writes every file atomically; returns their paths."""
    from .plots import metric_plot      # matplotlib loads in about a second: only when plotting

    out = Path(out)
    files = {
        "analysis.json": (json.dumps(report_dict(analysis), indent=1) + "\n").encode(),
        "per_scale.csv": per_scale_csv(analysis),
        "rise_shares.csv": rise_shares_csv(analysis),
        **{f"{m}.png": metric_plot(analysis, m) for m in METRICS},
    }
    for name, data in files.items():
        write_atomic(out / name, data)
    return [out / name for name in files]
