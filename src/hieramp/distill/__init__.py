"""Distilled datasets at scale: deterministic, resumable, sharded (`hieramp distill`)."""
from .plan import Job, Shard, parse_shard, plan_jobs, resolve_shard
from .run import DistillSettings, DistillSummary, distill
from .writer import default_workers

__all__ = ["DistillSettings", "DistillSummary", "Job", "Shard", "default_workers", "distill", "parse_shard", "plan_jobs",
           "resolve_shard"]
