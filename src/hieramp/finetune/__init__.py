"""Class-token fine-tuning of VAR checkpoints on an ImageFolder (`hieramp finetune`): one process,
torchrun ranks, resumable to the step."""
from .loop import RunOptions, Summary, finetune, init_distributed
from .settings import FinetuneSettings

__all__ = ["FinetuneSettings", "RunOptions", "Summary", "finetune", "init_distributed"]
