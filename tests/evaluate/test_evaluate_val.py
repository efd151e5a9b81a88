import json
import re

import pytest
import torch
from PIL import Image

from hieramp.cli import main
from hieramp.evaluate import loop
from hieramp.evaluate.run import prepare_evaluation
from hieramp.evaluate.students import resnet18_modified

HARD = dict(protocol="hard", student="convnet", image_size=32, batch_size=20)


def evaluate_on_val(distilled, val, work=None, **settings):
    if work is not None:
        work.mkdir(exist_ok=True)
    return prepare_evaluation(distilled, val, **settings).run(work)


def test_hard_label_student_beats_chance(image_sets):
    distilled, val = image_sets
    result = evaluate_on_val(distilled, val, epochs=20, **HARD)
    assert result.accuracy_mean > 0.7                         # chance: 0.25 on 4 classes
    assert result.val_images == 60 and result.num_images == 40 and result.classes == (0, 1, 2, 3)
    assert [h[0] for h in result.students[0].history] == [20]


def test_soft_protocol_command_end_to_end(tmp_path, image_sets):
    distilled, val = image_sets
    torch.manual_seed(0)
    torch.save(resnet18_modified(4).state_dict(), tmp_path / "teacher.pth")
    out = tmp_path / "scores" / "soft.json"
    args = ["evaluate", "--distilled", str(distilled), "--val", str(val), "--protocol", "soft",
            "--teacher", str(tmp_path / "teacher.pth"), "--student", "convnet", "--image-size", "32",
            "--epochs", "2", "--repeat", "2", "--workers", "2", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "soft" and result["student"] == "convnet" and result["epochs"] == 2
    assert result["teacher"] == str(tmp_path / "teacher.pth") and result["classes"] == [0, 1, 2, 3]
    assert len(result["accuracies"]) == len(result["best_accuracies"]) == 2 and result["val_images"] == 60
    assert result["batch_size"] == 40                         # 50 for IPC <= 10, never more than the set
    assert all(0 <= a <= 1 for a in result["accuracies"] + result["best_accuracies"])
    assert result["accuracy_mean"] == pytest.approx(sum(result["accuracies"]) / 2)
    assert 0 <= result["top5_mean"] <= 1
    with Image.open(out.with_suffix(".png")) as plot:
        assert plot.format == "PNG" and plot.width > 100


def test_resume_equals_an_uninterrupted_run(tmp_path, image_sets, monkeypatch):
    distilled, val = image_sets
    whole = evaluate_on_val(distilled, val, epochs=3, work=tmp_path / "whole", **HARD)

    calls = []
    train_epoch = loop.train_epoch

    def killed_in_epoch_two(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_epoch(*args)

    monkeypatch.setattr(loop, "train_epoch", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        evaluate_on_val(distilled, val, epochs=3, work=tmp_path / "resumed", **HARD)
    assert torch.load(tmp_path / "resumed" / "student-0.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(loop, "train_epoch", train_epoch)
    resumed = evaluate_on_val(distilled, val, epochs=3, work=tmp_path / "resumed", **HARD)

    assert resumed.students == whole.students
    a = torch.load(tmp_path / "whole" / "student-0.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed" / "student-0.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_work_of_another_evaluation_is_refused(tmp_path, image_sets):
    distilled, val = image_sets
    evaluate_on_val(distilled, val, epochs=1, work=tmp_path / "w", **HARD)
    assert main(["evaluate", "--distilled", str(distilled), "--val", str(val), "--protocol", "hard", "--student",
                 "convnet", "--image-size", "32", "--epochs", "2", "--work", str(tmp_path / "w")]) == 2


def _snapshot(root):
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.mark.parametrize("extra, message", [
    (["--protocol", "soft"], "soft protocol needs a teacher"),
    (["--protocol", "hard", "--teacher", "t.pth"], "--teacher only applies to --protocol soft"),
    (["--protocol", "soft", "--teacher", "missing.pth"], "teacher file .*missing.pth not found"),
    (["--protocol", "hard", "--device", "cuda:7"], "no CUDA device|use --device cpu"),
    (["--protocol", "hard", "--device", "gpu"], "unknown device"),
    (["--protocol", "hard", "--json", "."], "is a directory"),
    (["--protocol", "hard", "--val", "nowhere"], "validation set .*nowhere is not a directory"),
    (["--epochs", "3", "--val", None], "--epochs only apply with --val"),
])
def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, image_sets, capsys, monkeypatch, extra, message):
    distilled, val = image_sets
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.pth").write_bytes(b"")
    args = ["evaluate", "--distilled", str(distilled), "--val", str(val), "--work", "work", "--image-size", "32"]
    if None in extra:                                        # digits scoring: no --val, no --work
        args, extra = ["evaluate", "--distilled", str(distilled)], [x for x in extra if x not in ("--val", None)]
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hieramp evaluate: error: ")
    assert re.search(message, err)
    assert _snapshot(tmp_path) == before


def test_classes_that_do_not_match_exit_2(tmp_path, make_set, capsys):
    make_set(tmp_path / "d", ["0", "1"], 2)
    make_set(tmp_path / "v", ["0", "2"], 2)
    assert main(["evaluate", "--distilled", str(tmp_path / "d"), "--val", str(tmp_path / "v"), "--protocol", "hard"]) == 2
    assert "class 1 is in" in capsys.readouterr().err
