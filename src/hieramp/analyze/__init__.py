"""Instruments for tuning amplification schedules: per-scale token entropy and codebook coverage
with and without amplification, and side-by-side grids."""
from .report import write_report
from .run import Analysis, analyze
from .schedules import BASELINE, Schedule, parse_schedules

__all__ = ["Analysis", "BASELINE", "Schedule", "analyze", "parse_schedules", "write_report"]
