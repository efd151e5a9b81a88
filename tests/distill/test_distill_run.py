import copy
import dataclasses
import hashlib
import json

import pytest
import torch
from PIL import Image

from hieramp import AmpConfig, Generator, UserError
from hieramp.distill import DistillSettings, Shard, distill
from hieramp.model.bundle import HierAmpModel, ModelSource
from hieramp.model.config import TINY_VAE, tiny_var
from hieramp.model.var import VAR
from hieramp.model.vqvae import VQVAE
from hieramp.model.sampling import SamplingParams

SETTINGS = DistillSettings(seed=5, sampling=SamplingParams(guidance=2.0, top_k=20, top_p=0.9),
                           amp=AmpConfig(layers=(1,)), save_size=16)


def tree(root):
    """Every file under root: relative path -> bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def pngs(root):
    return {k: v for k, v in tree(root).items() if k.endswith(".png")}


def manifest_lines(root):
    return sorted(line for p in root.glob("manifest*.jsonl") for line in p.read_text().splitlines())


@pytest.fixture(scope="module")
def generator(tiny_model):
    return Generator(tiny_model)


@pytest.fixture(scope="module")
def reference(generator, tmp_path_factory):
    """classes 2, 7, 4 with 3 images each, batch 4, writer overlapped."""
    out = tmp_path_factory.mktemp("reference")
    summary = distill(generator, [2, 7, 4], 3, out, SETTINGS, batch_size=4, progress=False)
    return out, summary


def test_imagefolder_layout_mapping_and_manifest(reference, tiny_model):
    out, summary = reference
    assert (summary.planned, summary.written, summary.skipped, summary.dataset_finished) == (9, 9, 0, 9)
    assert sorted(p.name for p in out.iterdir()) == ["2", "4", "7", "manifest.jsonl", "mapping.json", "run.json"]
    for c in "247":
        assert sorted(p.name for p in (out / c).iterdir()) == ["0.png", "1.png", "2.png"]
    with Image.open(out / "7" / "2.png") as img:
        assert (img.format, img.size, img.mode) == ("PNG", (16, 16), "RGB")
    mapping = json.loads((out / "mapping.json").read_text())
    assert [(m["index"], m["wnid"], m["folder"], m["imagefolder_label"]) for m in mapping] == \
        [(2, None, "2", 0), (7, None, "7", 2), (4, None, "4", 1)]
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["class"], r["index"]) for r in records] == [(c, i) for i in range(3) for c in (2, 7, 4)]
    for r in records:
        assert r["status"] == "ok"
        assert r["sha256"] == hashlib.sha256((out / r["file"]).read_bytes()).hexdigest()
        assert (r["seed"], r["backend"], r["artifact"], r["save_size"]) == (5, "torch", None, 16)
        assert r["sampling"] == {"cfg": 2.0, "top_k": 20, "top_p": 0.9}
        assert r["amp"]["layers"] == [1] and r["amp"]["beta"] == [5.0] * 4 and r["amp"]["mode"] == "logit"
        assert r["model"] == tiny_model.source.fingerprint
    run = json.loads((out / "run.json").read_text())
    assert run["classes"] == [2, 7, 4] and run["ipc"] == 3 and run["seed"] == 5


def test_files_equal_the_generators_images(reference, generator):
    out, _ = reference
    from hieramp.runtime.images import encode_png
    result = generator.run([7, 4], seed=5, cfg=2.0, top_k=20, top_p=0.9, amp=SETTINGS.amp, indices=[1, 2])
    assert (out / "7" / "1.png").read_bytes() == encode_png(result.images[0], 16)
    assert (out / "4" / "2.png").read_bytes() == encode_png(result.images[1], 16)


@pytest.mark.parametrize("batch_size, overlap, workers, shards",
                         [(1, False, 1, 1), (5, False, 4, 1), (9, True, 3, 1), (2, True, 2, 3)],
                         ids=["batch1-inline", "batch5-inline-4-workers", "batch9-3-workers", "3-shards"])
def test_batch_size_overlap_workers_and_shards_do_not_change_the_files(reference, generator, tmp_path, batch_size,
                                                                       overlap, workers, shards):
    ref, _ = reference
    for i in range(shards):
        summary = distill(generator, [2, 7, 4], 3, tmp_path, SETTINGS, Shard(i, shards), batch_size, overlap, workers,
                          progress=False)
        assert summary.planned == len(range(i, 9, shards))
    assert summary.dataset_finished == summary.dataset_total == 9
    assert pngs(tmp_path) == pngs(ref)
    assert manifest_lines(tmp_path) == manifest_lines(ref)


def test_sets_nest(reference, generator, tmp_path):
    ref, _ = reference
    distill(generator, [2, 7, 4], 2, tmp_path, SETTINGS, batch_size=3, progress=False)
    small = pngs(tmp_path)
    assert len(small) == 6 and small == {k: v for k, v in pngs(ref).items() if not k.endswith("2.png")}


def test_resume_after_a_crash_redoes_only_unfinished_images(reference, generator, tmp_path):
    ref, _ = reference
    distill(generator, [2, 7, 4], 3, tmp_path, SETTINGS, batch_size=4, progress=False)
    manifest = tmp_path / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    # A crash leaves: a cut manifest line, a file whose line was never appended, a temporary file.
    manifest.write_text("".join(lines[:5]) + lines[5][:30])
    (tmp_path / "7" / "2.png").unlink()
    (tmp_path / "4" / ".2.png.tmp-4242").write_bytes(b"half a png")
    untouched = (tmp_path / "2" / "0.png").stat().st_ino
    summary = distill(generator, [2, 7, 4], 3, tmp_path, SETTINGS, batch_size=2, progress=False)
    assert (summary.skipped, summary.written) == (5, 4)
    assert tree(tmp_path) == tree(ref)
    assert (tmp_path / "2" / "0.png").stat().st_ino == untouched
    again = distill(generator, [2, 7, 4], 3, tmp_path, SETTINGS, batch_size=2, progress=False)
    assert (again.skipped, again.written) == (9, 0)


def test_deleted_image_is_made_again(reference, generator, tmp_path):
    ref, _ = reference
    distill(generator, [2, 7, 4], 3, tmp_path, SETTINGS, progress=False)
    (tmp_path / "4" / "1.png").unlink()
    summary = distill(generator, [2, 7, 4], 3, tmp_path, SETTINGS, progress=False)
    assert summary.written == 1
    assert pngs(tmp_path) == pngs(ref)


def test_other_settings_are_refused_and_nothing_is_written(reference, generator, tmp_path):
    distill(generator, [2, 7, 4], 1, tmp_path, SETTINGS, progress=False)
    before = tree(tmp_path)
    for kwargs, match in [
        (dict(settings=DistillSettings(seed=6, sampling=SETTINGS.sampling, amp=SETTINGS.amp, save_size=16)), "seed"),
        (dict(settings=DistillSettings(seed=5, sampling=SETTINGS.sampling, amp=AmpConfig(layers=(0,)), save_size=16)), "amp"),
        (dict(settings=DistillSettings(seed=5, sampling=SETTINGS.sampling, amp=SETTINGS.amp, save_size=32)), "save_size"),
        (dict(settings=dataclasses.replace(SETTINGS, png_level=1)), "png_level"),
        (dict(classes=[2, 7]), "classes"),
        (dict(ipc=2), "ipc"),
    ]:
        args = dict(classes=[2, 7, 4], ipc=1, settings=SETTINGS) | kwargs
        with pytest.raises(UserError, match=f"other settings: {match} is"):
            distill(generator, args["classes"], args["ipc"], tmp_path, args["settings"], progress=False)
        assert tree(tmp_path) == before


def test_png_level_changes_the_bytes_not_the_pixels(reference, generator, tmp_path):
    out, _ = reference
    fast = tmp_path
    distill(generator, [2, 7, 4], 3, fast, dataclasses.replace(SETTINGS, png_level=0), progress=False)
    ref_pngs, fast_pngs = pngs(out), pngs(fast)
    assert ref_pngs.keys() == fast_pngs.keys()
    for name in ref_pngs:
        assert fast_pngs[name] != ref_pngs[name] and len(fast_pngs[name]) > len(ref_pngs[name])
        with Image.open(out / name) as a, Image.open(fast / name) as b:
            assert a.tobytes() == b.tobytes()
    assert {json.loads(line)["png_level"] for line in manifest_lines(fast)} == {0}
    assert {json.loads(line)["png_level"] for line in manifest_lines(out)} == {6}


def test_bad_arguments(generator, tmp_path):
    with pytest.raises(UserError, match="out of range"):
        distill(generator, [3, 10], 1, tmp_path, SETTINGS, progress=False)
    with pytest.raises(UserError, match="at least 1"):
        distill(generator, [3], 0, tmp_path, SETTINGS, progress=False)
    with pytest.raises(UserError, match="batch size"):
        distill(generator, [3], 1, tmp_path, SETTINGS, batch_size=0, progress=False)
    with pytest.raises(UserError, match="PNG compression level must be 0-9, got 10"):
        distill(generator, [3], 1, tmp_path, dataclasses.replace(SETTINGS, png_level=10), progress=False)
    with pytest.raises(UserError, match="write workers"):
        distill(generator, [3], 1, tmp_path, SETTINGS, write_workers=0, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage, status", [("zero", "blank"), ("nan", "nonfinite")])
def test_blank_and_nonfinite_images_are_reported_not_saved(tiny_model, tmp_path, capsys, damage, status):
    model = copy.deepcopy(tiny_model)
    conv_out = model.vae.decoder.conv_out
    with torch.no_grad():
        if damage == "zero":                            # the decoder paints every pixel the same grey
            conv_out.weight.zero_()
            conv_out.bias.zero_()
        else:
            conv_out.bias[0] = float("nan")
    summary = distill(Generator(model), [1, 3], 2, tmp_path, SETTINGS, write_workers=2, progress=False)
    assert summary.written == 0 and summary.rejected[status] == 4
    assert f"{status} 4" in str(summary)
    assert list((tmp_path / "1").iterdir()) == [] and list((tmp_path / "3").iterdir()) == []
    records = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [(r["status"], r["file"], r["sha256"]) for r in records] == [(status, None, None)] * 4
    assert f"class 1 image 0 is {status}: not saved" in capsys.readouterr().err
    rerun = distill(Generator(model), [1, 3], 2, tmp_path, SETTINGS, progress=False)
    assert (rerun.skipped, rerun.written) == (4, 0)


@pytest.fixture(scope="module")
def imagenet_generator():
    """A tiny architecture with the ImageNet-1k label space, so classes get wnid folders."""
    cfg = tiny_var(num_classes=1000, vae=TINY_VAE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = HierAmpModel(VAR(cfg), VQVAE(cfg.vae), ModelSource("tiny-1000", "a" * 64, "b" * 64)).eval()
    return Generator(model)


IMAGEWOOF_WNIDS = ["n02086240", "n02087394", "n02088364", "n02089973", "n02093754", "n02096294", "n02099601",
                   "n02105641", "n02111889", "n02115641"]


@pytest.mark.parametrize("spec", ["imagewoof", "file-of-wnids"])
def test_wnid_folders_for_imagenet_classes(imagenet_generator, tmp_path, spec):
    from hieramp.classes import parse_class_spec
    if spec == "file-of-wnids":
        path = tmp_path / "classes.txt"
        path.write_text("\n".join(reversed(IMAGEWOOF_WNIDS)) + "\n")
        spec = str(path)
    out = tmp_path / "out"
    out.mkdir()
    classes = parse_class_spec(spec, 1000)
    distill(imagenet_generator, classes, 1, out, SETTINGS, batch_size=10, progress=False)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == IMAGEWOOF_WNIDS
    assert all((out / wnid / "0.png").is_file() for wnid in IMAGEWOOF_WNIDS)
    mapping = {m["wnid"]: m for m in json.loads((out / "mapping.json").read_text())}
    assert mapping["n02099601"]["index"] == 207 and mapping["n02099601"]["name"] == "golden retriever"
    assert [mapping[w]["imagefolder_label"] for w in IMAGEWOOF_WNIDS] == list(range(10))
