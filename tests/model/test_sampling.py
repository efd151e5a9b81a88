import math

import torch

from hieramp.model.sampling import batch_noise, filter_sorted, guidance_scales, guide, image_noise, sample_tokens


def test_guidance_ramps_linearly_and_combines():
    assert guidance_scales(4.0, 5) == [0.0, 1.0, 2.0, 3.0, 4.0]
    cond, uncond = torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[0.5, 4.0]]])
    torch.testing.assert_close(guide(torch.cat([cond, uncond]), 2.0), 3 * cond - 2 * uncond)


def test_top_k_keeps_everything_at_least_the_kth_largest():
    sorted_logits = torch.tensor([[5.0, 4.0, 3.0, 3.0, 1.0]])
    kept = torch.isfinite(filter_sorted(sorted_logits, top_k=3, top_p=1.0))
    assert kept.tolist() == [[True, True, True, True, False]]          # the tie at the k-th value stays


def test_top_p_drops_tail_whose_cumulative_mass_is_small():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(filter_sorted(probs.log(), top_k=0, top_p=0.8))
    # ascending cumulative: 0.05, 0.2, 0.5, 1.0 -> drop those <= 0.2
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_sorted(probs.log(), 0, 1e-6)).tolist() == [[True, False, False, False]]


def test_inverse_cdf_in_descending_probability_order():
    logits = torch.log(torch.tensor([[[0.1, 0.6, 0.3]]]))              # descending order: 1, 2, 0
    pick = lambda u: sample_tokens(logits, torch.tensor([[u]]), 0, 1.0).item()
    assert [pick(0.0), pick(0.59), pick(0.61), pick(0.89), pick(0.91), pick(0.999999)] == [1, 1, 2, 2, 0, 0]


def test_filtered_tokens_are_never_drawn():
    logits = torch.randn(4, 50, 64, generator=torch.Generator().manual_seed(0))
    noise = torch.rand(4, 50, generator=torch.Generator().manual_seed(1))
    ids = sample_tokens(logits, noise, top_k=5, top_p=1.0)
    top5 = logits.topk(5, dim=-1).indices
    assert (top5 == ids.unsqueeze(-1)).any(-1).all()


def test_sampling_matches_the_distribution():
    logits = torch.tensor([[[0.0, math.log(3.0)]]]).expand(1, 20000, 2)
    noise = torch.rand(1, 20000, generator=torch.Generator().manual_seed(0))
    share = sample_tokens(logits, noise, 0, 1.0).float().mean().item()
    assert abs(share - 0.75) < 0.01


def test_noise_depends_only_on_seed_class_and_index():
    a = image_noise(0, 3, 1, 30)
    assert torch.equal(a, image_noise(0, 3, 1, 30))
    assert not torch.equal(a, image_noise(0, 3, 2, 30))
    assert not torch.equal(a, image_noise(1, 3, 1, 30))
    assert not torch.equal(a, image_noise(0, 4, 1, 30))
    batch = batch_noise(0, [5, 3, 3], [0, 0, 1], (1, 2, 3))
    alone = batch_noise(0, [3], [1], (1, 2, 3))
    assert [t.shape for t in batch] == [(3, 1), (3, 4), (3, 9)]
    assert all(torch.equal(b[2], s[0]) for b, s in zip(batch, alone))
