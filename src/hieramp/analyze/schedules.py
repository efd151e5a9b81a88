"""Amplification schedules to compare: `none`, one beta, or three stage betas (coarse, mid, fine)."""
import math
from dataclasses import dataclass, replace
from typing import Optional

from ..errors import UserError
from ..model.amp_config import AmpConfig

SCHEDULE_FORMS = "use `none`, one beta like 5, or three stage betas coarse,mid,fine like 5,5,0.5, separated by ;"


@dataclass(frozen=True)
class Schedule:
    name: str                       # the label in every output: "none", "5", "5,5,0.5"
    beta: Optional[tuple] = None    # None: no amplification; else 1 value or 3 stage values

    @property
    def amplifies(self) -> bool:
        return self.beta is not None

    def amp_config(self, base: AmpConfig) -> AmpConfig:
        """`base` with this schedule's beta; rho, mode, layers and scales stay the base's."""
        if not self.amplifies:
            return AmpConfig(enabled=False)
        return replace(base, beta=self.beta, enabled=True)


BASELINE = Schedule("none")


def parse_schedule(part: str) -> Schedule:
    text = part.strip()
    if text.lower() == "none":
        return BASELINE
    values = [v.strip() for v in text.split(",")]
    try:
        beta = tuple(float(v) for v in values)
    except ValueError:
        raise UserError(f"bad schedule {text!r}: {SCHEDULE_FORMS}") from None
    if len(beta) not in (1, 3):
        raise UserError(f"bad schedule {text!r}: it has {len(beta)} betas; {SCHEDULE_FORMS}")
    if not all(math.isfinite(b) for b in beta):
        raise UserError(f"bad schedule {text!r}: betas must be finite numbers; {SCHEDULE_FORMS}")
    return Schedule(",".join(f"{b:g}" for b in beta), beta)


def parse_schedules(text: str) -> list:
    """Schedules in the order given, the `none` baseline first (added when missing: rises are
    measured against it and grids show it)."""
    parts = text.split(";")
    if parts and not parts[-1].strip():
        parts = parts[:-1]                                  # allow a trailing ";"
    if not parts:
        raise UserError(f"no schedules given: {SCHEDULE_FORMS}")
    schedules = []
    for part in parts:
        if not part.strip():
            raise UserError(f"empty schedule in {text!r}: {SCHEDULE_FORMS}")
        schedule = parse_schedule(part)
        if schedule in schedules:
            raise UserError(f"schedule {schedule.name} is given twice in {text!r}: list each schedule once")
        schedules.append(schedule)
    return with_baseline(schedules)


def with_baseline(schedules) -> list:
    """The `none` baseline first, then the others in their order."""
    return [BASELINE] + [s for s in schedules if s != BASELINE]
