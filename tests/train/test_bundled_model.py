import json
from dataclasses import asdict
from importlib import resources

import pytest
import torch

from hieramp.commands.common import default_amp_layers
from hieramp.model.amp_config import AmpConfig
from hieramp.model.checkpoint import read_state_dict
from hieramp.model.presets import BUNDLED, DEFAULT_PRESET, resolve_model
from hieramp.runtime.generator import Generator
from hieramp.train.data import to_rgb
from hieramp.train.recipe import Recipe
from hieramp.train.student import accuracy, predict

MAX_BUNDLE_BYTES = 10 * 2 ** 20


def bundled_files():
    return [resources.files("hieramp").joinpath("data", "digits", name) for name in
            ("ar-ckpt-digits.pth", "vae-digits.pth", "heldout.npz", "training.json")]


def test_default_preset_is_the_bundled_digits_model_within_size():
    assert DEFAULT_PRESET == "digits" and "digits" in BUNDLED
    assert sum(f.stat().st_size for f in bundled_files()) <= MAX_BUNDLE_BYTES
    model = resolve_model("default")
    cfg = model.cfg
    assert (cfg.num_classes, cfg.patch_nums, cfg.cls_token_scales) == (10, (1, 2, 3, 4, 6, 8), tuple(range(6)))
    assert model.source.name == "ar-ckpt-digits.pth"


def test_bundled_weights_come_from_the_current_recipe():
    """Changing the recipe means retraining and re-bundling (`hieramp train`): the record must say so."""
    record = json.loads(bundled_files()[3].read_text())
    assert record["recipe"] == json.loads(json.dumps(asdict(Recipe())))
    assert record["total_wall_s"] <= 15 * 60 and record["threads"] == 2


def test_bundled_var_is_a_hieramp_trainer_file_with_class_head():
    with resources.as_file(bundled_files()[0]) as path:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        state = read_state_dict(path)
    assert set(raw) == {"trainer"} and set(raw["trainer"]) == {"var_wo_ddp"}
    assert state["class_head.weight"].shape == (10, state["word_embed.weight"].shape[0])


def test_real_digits_student_is_a_fair_judge(real_student, digits_split):
    _, heldout = digits_split
    assert accuracy(real_student, to_rgb(heldout.images), heldout.labels) >= 0.9


@pytest.mark.parametrize("amplify", [True, False], ids=["amp", "no-amp"])
def test_generated_digits_are_recognised_as_their_class(real_student, amplify):
    model = resolve_model("default")
    amp = AmpConfig(layers=default_amp_layers(model.cfg.depth)) if amplify else AmpConfig(enabled=False)
    labels = [c for c in range(10) for _ in range(10)]
    images = Generator(model).run(labels, seed=0, amp=amp).images                    # (100, 3, 16, 16) in [0, 1]
    assert images.shape == (100, 3, 16, 16)
    agree = (predict(real_student, images * 2 - 1) == torch.tensor(labels)).float().mean().item()
    assert agree >= 0.8
