import numpy as np
import pytest
import torch

from hieramp.errors import UserError
from hieramp.model.dit.amp import DiTAmpConfig
from hieramp.model.dit.diffusion import DiTSampling, Sampler, Schedule, linear_betas, spaced_timesteps
from hieramp.runtime.dit.generator import DiTGenerator


def test_linear_schedule_and_respacing():
    betas = linear_betas()
    assert betas[0] == 1e-4 and betas[-1] == 0.02 and len(betas) == 1000
    used = spaced_timesteps(1000, 50)
    assert len(used) == 50 and used[:3] == [0, 20, 41] and used[-1] == 999
    sched = Schedule.respaced(50)
    np.testing.assert_allclose(sched.alphas_cumprod, np.cumprod(1 - betas)[used], rtol=1e-12)
    np.testing.assert_allclose(Schedule.respaced(1000).betas, betas, rtol=1e-12)


def test_ddpm_update_is_the_learned_range_posterior_sample():
    sampler = Sampler("ddpm", 10)
    gen = torch.Generator().manual_seed(0)
    x, eps, v, z = (torch.randn(2, 4, 3, 3, generator=gen) for _ in range(4))
    v = v.clamp(-1, 1)
    i = 3
    k = 10 - 1 - i
    ac = np.cumprod(1 - sampler.schedule.betas)
    a, a_prev, b = ac[k], ac[k - 1], 1 - ac[k] / ac[k - 1]
    xd, ed, vd, zd = (t.double().numpy() for t in (x, eps, v, z))
    x0 = (xd - np.sqrt(1 - a) * ed) / np.sqrt(a)
    mean = (np.sqrt(a_prev) * b * x0 + np.sqrt(1 - b) * (1 - a_prev) * xd) / (1 - a)
    post = b * (1 - a_prev) / (1 - a)
    log_var = (vd + 1) / 2 * np.log(b) + (1 - vd) / 2 * np.log(post)
    expected = mean + np.exp(0.5 * log_var) * zd
    got = sampler.update(i, x, torch.cat([eps, v], 1), z)
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-5, rtol=1e-5)
    assert sampler.timestep(0) == 999 and sampler.timestep(9) == 0


def test_ddim_last_step_returns_the_x0_prediction():
    sampler = Sampler("ddim", 1)
    x, eps = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    a = np.cumprod(1 - linear_betas())[0]
    torch.testing.assert_close(sampler.update(0, x, eps), ((x.double() - np.sqrt(1 - a) * eps.double()) / np.sqrt(a)).float())


def test_ddim_reproduces(tiny_dit_model):
    gen = DiTGenerator(tiny_dit_model)
    runs = [gen.run([1, 4], seed=3, sampling=DiTSampling(steps=4, sampler="ddim"), amp=DiTAmpConfig(mask="attention")) for _ in range(2)]
    assert torch.equal(runs[0].images, runs[1].images)
    ddpm = gen.run([1, 4], seed=3, sampling=DiTSampling(steps=4, sampler="ddpm"), amp=DiTAmpConfig(mask="attention"))
    assert not torch.equal(ddpm.images, runs[0].images)


@pytest.mark.parametrize("kind, steps, message", [("euler", 10, "unknown sampler 'euler'"), ("ddpm", 0, "--steps must lie in 1-1000"),
                                                   ("ddim", 1001, "--steps must lie in 1-1000")])
def test_bad_sampler_settings(kind, steps, message):
    with pytest.raises(UserError, match=message):
        Sampler(kind, steps)
