"""`hieramp bench`: latency, throughput, peak memory and the cost of amplification, per backend
and batch size, for the paper's three variants (base VAR, + class tokens, + amplification)."""
from .report import markdown, plot_png, to_json_text
from .run import ArmResult, BenchReport, BenchSettings, run_bench
from .variants import VARIANTS, without_class_tokens
from .worker import ModelSpec

__all__ = ["VARIANTS", "ArmResult", "BenchReport", "BenchSettings", "ModelSpec", "markdown", "plot_png", "run_bench",
           "to_json_text", "without_class_tokens"]
