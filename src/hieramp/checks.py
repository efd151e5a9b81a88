"""Checks of the values a user gives, shared by the Python API and the command line so that both
refuse the same mistake with the same message. Messages name a value in words (top-p, seed,
images per class), never as a command-line flag: the command line adds the flag itself."""
import math
import numbers
from collections import Counter

import torch

from .errors import UserError

# numpy's SeedSequence takes any integer >= 0 and torch.manual_seed any below 2**64; int64 keeps
# the seed exact in run.json for every JSON reader that parses integers as int64.
MAX_SEED = 2 ** 63 - 1
# The largest range a list like 1-9 may span: checked before it is expanded.
MAX_RANGE = 4096


def integer(name: str, value, low: int = None, high: int = None, note="") -> int:
    """`value` as an int within [low, high]; bools and floats with a fraction are refused."""
    whole = not isinstance(value, bool) and (isinstance(value, numbers.Integral) or
                                             (isinstance(value, float) and value.is_integer()))
    if not whole or (low is not None and value < low) or (high is not None and value > high):
        raise UserError(f"{name} must be an integer{_bounds(low, high)}{note}, got {value!r}")
    return int(value)


def _bounds(low, high) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def finite(name: str, value, low: float = None, high: float = None, low_open=False, note="") -> float:
    """`value` as a finite float within [low, high] (`low_open`: (low, high])."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and number > high
    if not math.isfinite(number) or below or above:
        if low is None and high is None:
            raise UserError(f"{name} must be a finite number{note}, got {value!r}")
        interval = f"{'(' if low_open or low is None else '['}{'-inf' if low is None else f'{low:g}'}, " \
                   f"{'inf)' if high is None else f'{high:g}]'}"
        raise UserError(f"{name} must lie in {interval}{note}, got {value!r}")
    return number


def seed(value) -> int:
    return integer("seed", value, 0, MAX_SEED)


def cfg(value) -> float:
    return finite("cfg", value, low=0, note=" (the guidance scale)")


def top_k(value) -> int:
    return integer("top-k", value, low=0, note=" (0 keeps every token)")


def top_p(value) -> float:
    return finite("top-p", value, low=0, high=1, low_open=True, note=" (1 keeps every token)")


def beta(value) -> float:
    return finite("beta", value)


def rho(value) -> float:
    return finite("rho", value, low=0, high=1, low_open=True, note=" (the share of tokens amplified)")


def max_logit_error(value) -> float:
    return finite("max logit error", value, low=0)


def max_rel_logit_error(value) -> float:
    return finite("max relative logit error", value, low=0)


def max_output_error(value) -> float:
    return finite("max output error", value, low=0)


def psnr(value) -> float:
    return finite("min PSNR", value, note=" (in dB)")


def share(name: str):
    """A check for a share in [0, 1] (an agreement rate)."""
    return lambda value: finite(name, value, low=0, high=1)


def int_range_list(name: str, text: str) -> list:
    """'1,2,5-7' -> [1, 2, 5, 6, 7]: integers >= 0, each once, ranges ascending; the size of a
    range is checked before it is expanded."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise UserError(f"cannot read {text!r} as {name}: use integers >= 0 and ranges like 1,2,5-9")
        start, end = int(lo), int(hi) if dash else int(lo)
        if start > end:
            raise UserError(f"range {part} in {name} runs backwards: write it as {end}-{start}")
        if end - start >= MAX_RANGE:
            raise UserError(f"range {part} in {name} spans {end - start + 1} values, more than {MAX_RANGE}")
        values += range(start, end + 1)
    repeated = sorted(v for v, n in Counter(values).items() if n > 1)
    if repeated:
        raise UserError(f"{name} {text!r} lists {', '.join(map(str, repeated))} more than once: list each once")
    return values


def cuda_missing_reason() -> str:
    return "this torch is a CPU build" if torch.version.cuda is None else "no CUDA device is visible"


def device(value) -> torch.device:
    """A device the backends run on: cpu, cuda or cuda:N, with N a visible GPU."""
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {value!r}: use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"device {value!r} cannot run models here: use cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {value!r} needs a CUDA GPU, and {cuda_missing_reason()}: run on cpu, "
                            f"or on a machine with a GPU")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UserError(f"device {value!r} does not exist: {count} CUDA device(s) are visible, "
                            f"cuda:0-cuda:{count - 1}")
    return dev
