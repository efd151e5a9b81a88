import torch

from hieramp.bench.timing import TimedBackend, stage_names
from hieramp.model.amp_config import AmpConfig
from hieramp.model.sampling import batch_noise
from hieramp.runtime.backends.torch_backend import TorchBackend
from hieramp.model.sampling import SamplingParams
from hieramp.runtime.loop import run_scales


def run(backend, model):
    labels = [1, 4]
    noise = batch_noise(0, labels, [0, 0], model.cfg.patch_nums)
    plan = AmpConfig(layers=(1,)).resolve(model.cfg)
    return run_scales(backend, torch.tensor(labels), noise, SamplingParams(), plan)


def test_proxy_times_every_stage_and_changes_nothing(tiny_model):
    backend = TorchBackend(tiny_model)
    timed = TimedBackend(backend)
    plain, wrapped = run(backend, tiny_model), run(timed, tiny_model)
    assert torch.equal(plain.images, wrapped.images)
    assert all(torch.equal(a, b) for a, b in zip(plain.tokens, wrapped.tokens))
    num_scales = tiny_model.cfg.num_scales
    assert set(timed.seconds) == set(stage_names(num_scales)) - {"other"}
    assert all(s > 0 for s in timed.seconds.values())


def test_proxy_synchronises_around_each_call(tiny_model):
    calls = []
    timed = TimedBackend(TorchBackend(tiny_model), synchronize=lambda: calls.append(1))
    run(timed, tiny_model)
    S = tiny_model.cfg.num_scales
    timed_calls = 1 + S + S + S + 1          # begin, steps, samples, updates, decode
    assert len(calls) == 2 * timed_calls


def test_stage_names_in_loop_order():
    assert stage_names(3) == ("begin", "step 0", "step 1", "step 2", "sample", "update", "decode", "other")
