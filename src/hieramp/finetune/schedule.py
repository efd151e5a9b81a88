"""The public learning-rate shape (VAR's `lin0`): linear warm-up over the first 2 % of the steps from
0.5 % of the peak, the peak held for 5 % of the rest, then a linear decay to 10 % of the peak."""
WARMUP_SHARE = 0.02
WARMUP_START = 0.005
HOLD_SHARE = 0.05
FINAL = 0.1


def lr_factor(step: int, total: int) -> float:
    """The learning rate of `step` (0 .. total-1) as a fraction of the peak."""
    warmup = round(WARMUP_SHARE * total)
    if step < warmup:
        return WARMUP_START + (1 - WARMUP_START) * step / warmup
    passed = (step - warmup) / max(1, total - 1 - warmup)              # 0 .. 1 after the warm-up
    if passed < HOLD_SHARE:
        return 1.0
    return FINAL + (1 - FINAL) * (1 - passed) / (1 - HOLD_SHARE)
