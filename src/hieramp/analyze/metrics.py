"""Token statistics of one scale: entropy of the token-id histogram and codebook coverage, and
the share of classes whose stage average rises over a baseline."""
import numpy as np
import torch


def token_histogram(ids, vocab_size: int) -> torch.Tensor:
    """How often each code occurs among `ids` (any shape): (V,) int64."""
    return torch.bincount(torch.as_tensor(ids).reshape(-1).long(), minlength=vocab_size)


def entropy_bits(counts_V: torch.Tensor) -> float:
    """Shannon entropy of the histogram in bits: 0 for a single code, log2(V) for uniform use."""
    p = counts_V[counts_V > 0].double()
    p = p / p.sum()
    return float(-(p * p.log2()).sum())


def coverage(counts_V: torch.Tensor) -> float:
    """Share of the codebook used at least once."""
    return float((counts_V > 0).sum()) / len(counts_V)


def stage_means(values_CS: np.ndarray, stages: dict) -> dict:
    """Per stage, each class's average over the stage's scales: stage -> (C,)."""
    return {name: values_CS[:, list(scales)].mean(axis=1) for name, scales in stages.items() if scales}


def rise_shares(values_CS: np.ndarray, baseline_CS: np.ndarray, stages: dict) -> dict:
    """Per stage, the share of classes whose stage average is strictly above the baseline's;
    None for a stage without scales (models with fewer than 4 scales)."""
    ours, base = stage_means(values_CS, stages), stage_means(baseline_CS, stages)
    return {name: float(np.mean(ours[name] > base[name])) if name in ours else None for name in stages}
