"""loss.png: the losses and accuracies of log.jsonl over the steps."""
import io

from matplotlib.figure import Figure


def log_plot(records: list) -> bytes:
    """PNG bytes: losses on the left, token and class-token accuracies on the right."""
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(11, 4), layout="constrained")
    losses, accs = fig.subplots(1, 2)
    for key in ("loss", "token_loss", "cls_loss"):
        if key in records[0]:
            losses.plot(steps, [r[key] for r in records], label=key)
    losses.set(xlabel="step", ylabel="cross-entropy", title="losses")
    for key in ("token_acc", "token_acc_last"):
        accs.plot(steps, [r[key] for r in records], label=key)
    if "cls_acc" in records[0]:
        accs.plot(steps, [sum(r["cls_acc"]) / len(r["cls_acc"]) for r in records], label="cls_acc (mean over scales)")
    accs.set(xlabel="step", ylabel="%", title="accuracies")
    for ax in (losses, accs):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
