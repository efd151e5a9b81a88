"""Every user mistake, command by command: exit code 2, exactly one line on stderr, no traceback,
and nothing created or changed on disk.

Each command has a plain list of (argv, what) rows: the arguments after the command's base
arguments, and a piece of the one line it must print. Placeholders in braces name the files of
the `place` fixture (an empty file, a text file, a binary file, a directory, ...). To cover a new
command or flag, add rows (and a base) below. Every row fails before any model work: the `tiny`
preset loads in milliseconds, so the whole table runs in-process in seconds.

Not mistakes, so not here: duplicate or overlapping classes (`--classes 0-9,5` is documented to
drop repeats), and a negative --beta (in logit mode it suppresses the salient tokens).
"""
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

import hieramp
from hieramp.classes import parse_class_spec
from hieramp.cli import main
from hieramp.compare import Tolerances
from hieramp.distill import DistillSettings
from hieramp.export.exporter import export_model
from hieramp.model.sampling import SamplingParams
from hieramp.train.evaluate import read_image_folder

DIGITS = Path(hieramp.__file__).parent / "data" / "digits"
HUGE = str(2 ** 64)

# Rows for the option groups several commands share (hieramp.commands.common).
MODEL = [
    (["--device", "bogus"], "unknown device 'bogus': use cpu, cuda or cuda:N"),
    (["--device", "meta"], "device 'meta' cannot run models here"),
    (["--device", "cuda"], "device 'cuda' needs a CUDA GPU"),                 # skipped where CUDA exists
    (["--device", "cuda:99"], "device 'cuda:99'"),
    (["--device", ""], "unknown device ''"),
    (["--model", "nosuchpreset"], "unknown model 'nosuchpreset'"),
    (["--model", "{missing}", "--vae", "{vae}"], "checkpoint not found"),
    (["--model", "{empty}", "--vae", "{vae}"], "is empty"),
    (["--model", "{text}", "--vae", "{vae}"], "is not a PyTorch checkpoint"),
    (["--model", "{binary}", "--vae", "{vae}"], "is not a PyTorch checkpoint"),
    (["--model", "{cut}", "--vae", "{vae}"], "cannot read checkpoint"),
    (["--model", "{dir_pth}", "--vae", "{vae}"], "is a directory"),
    (["--model", "{unreadable}", "--vae", "{vae}"], "cannot read checkpoint"),
    (["--model", "{var}"], "is a VAR checkpoint: pass its VQVAE file"),
    (["--model", "{var}", "--vae", "{missing}"], "checkpoint not found"),
    (["--model", "{var}", "--vae", "{empty}"], "is empty"),
    (["--model", "{var}", "--vae", "{text}"], "is not a PyTorch checkpoint"),
    (["--model", "{var}", "--vae", "{binary}"], "is not a PyTorch checkpoint"),
    (["--model", "{var}", "--vae", "{dir_pth}"], "is a directory"),
    (["--model", "{var}", "--vae", "{var}"], "is this a VQVAE checkpoint"),
    (["--model", "{vae}", "--vae", "{vae}"], "is this a VAR checkpoint"),
]
SAMPLING = [
    (["--seed", "-5"], "seed must be an integer from 0 to"),
    (["--seed", HUGE], "seed must be an integer from 0 to"),
    (["--seed", "1.5"], "seed must be an integer"),
    (["--seed", "x"], "seed must be an integer"),
    (["--cfg", "nan"], "cfg must lie in [0, inf)"),
    (["--cfg", "inf"], "cfg must lie in [0, inf)"),
    (["--cfg", "-1"], "cfg must lie in [0, inf)"),
    (["--cfg", "1e999"], "cfg must lie in [0, inf)"),
    (["--cfg", "x"], "cfg must lie in [0, inf)"),
    (["--top-k", "-3"], "top-k must be an integer >= 0"),
    (["--top-k", "1.5"], "top-k must be an integer >= 0"),
    (["--top-k", "x"], "top-k must be an integer >= 0"),
    (["--top-p", "7"], "top-p must lie in (0, 1]"),
    (["--top-p", "0"], "top-p must lie in (0, 1]"),
    (["--top-p", "-0.5"], "top-p must lie in (0, 1]"),
    (["--top-p", "nan"], "top-p must lie in (0, 1]"),
    (["--top-p", "inf"], "top-p must lie in (0, 1]"),
]
AMP = [
    (["--beta", "nan"], "beta must be a finite number, got nan"),
    (["--beta=-inf"], "beta must be a finite number, got -inf"),
    (["--beta", "inf"], "beta must be a finite number, got inf"),
    (["--beta", "x"], "beta must be a finite number"),
    (["--beta", ""], "cannot read '' as numbers"),
    (["--beta", "5,,1"], "cannot read '5,,1' as numbers"),
    (["--beta", "1,2"], "beta takes 1, 3"),
    (["--rho", "nan"], "rho must lie in (0, 1]"),
    (["--rho", "0"], "rho must lie in (0, 1]"),
    (["--rho", "1.5"], "rho must lie in (0, 1]"),
    (["--rho", "-1"], "rho must lie in (0, 1]"),
    (["--rho", "0.5,inf,0.5"], "rho must lie in (0, 1]"),
    (["--amp-layers", ","], "cannot read ',' as amplification layers"),
    (["--amp-layers", ""], "cannot read '' as amplification layers"),
    (["--amp-layers", "x"], "cannot read 'x' as amplification layers"),
    (["--amp-layers", "-1"], "cannot read '-1' as amplification layers"),
    (["--amp-layers", "3-1"], "range 3-1 in amplification layers runs backwards"),
    (["--amp-layers", "1,1"], "lists 1 more than once"),
    (["--amp-layers", "0-99999999"], "spans 100000000 values, more than 4096"),
    (["--amp-layers", "99"], "amplification layer 99 does not exist"),
    (["--amp-scales", ""], "cannot read '' as amplification scales"),
    (["--amp-scales", "2-1"], "range 2-1 in amplification scales runs backwards"),
    (["--amp-scales", "1,2,1"], "lists 1 more than once"),
    (["--amp-scales", "0-99999999"], "spans 100000000 values"),
    (["--amp-scales", "9"], "amplification scale 9 has no class token"),
    (["--amp-mode", "bias"], "invalid choice: 'bias'"),
    (["--no-amp", "--beta", "3"], "--no-amp turns amplification off, so --beta would do nothing"),
    (["--no-amp", "--amp-layers", "1"], "--no-amp turns amplification off, so --amp-layers would do nothing"),
]
BACKEND = [
    (["--backend", "jax"], "unknown backend 'jax'"),
    (["--export", "{dir}"], "--export is for --backend onnxruntime, but the backend is torch"),
    (["--engine", "{dir}"], "--engine is for --backend tensorrt, but the backend is torch"),
    (["--rebuild"], "--rebuild is for --backend tensorrt"),
    (["--backend", "onnxruntime"], "--backend onnxruntime runs an export: pass --export DIR"),
    (["--backend", "tensorrt"], "--backend tensorrt runs engines: pass --engine DIR"),
    (["--backend", "onnxruntime", "--export", "{missing}"], "does not exist: make one with `hieramp export"),
    (["--backend", "onnxruntime", "--export", "{file}"], "is a file, not an export directory"),
    (["--backend", "onnxruntime", "--export", "{dir}"], "has no manifest.json"),
    (["--backend", "onnxruntime", "--export", "{dir}", "--engine", "{dir}"], "--engine is for --backend tensorrt"),
]
CLASSES = [
    (["--classes", ""], "empty class spec"),
    (["--classes", ","], "unknown class spec"),
    (["--classes", "5-1"], "bad range 5-1: the start is above the end"),
    (["--classes", "0-99999999"], "class 99999999 is out of range"),
    (["--classes", "-1"], "unknown class spec '-1'"),
    (["--classes", "imagenette"], "subset imagenette only exists for 1000-class ImageNet models"),
    (["--classes", "{missing_txt}"], "not found"),
    (["--classes", "{empty}"], "lists no classes"),
    (["--classes", "{binary}"], "is not text"),
    (["--classes", "{dir}"], "is a directory"),
    (["--classes", "{unreadable}"], "cannot read class file"),
]
OUT_DIR = [
    (["--out", "{file}"], "cannot create output directory"),
    (["--out", "{file}/sub"], "cannot create output directory"),
    (["--out", "{readonly}/sub"], "choose a writable path"),
]
COUNTS = [                     # (flag, what) of a flag taking a count from 1 to a ceiling
    ("--batch-size", "the batch size must be an integer from 1 to 4096"),
]


def counts(flag, what, high=True):
    rows = [([flag, "0"], what), ([flag, "-1"], what), ([flag, "x"], what), ([flag, "2.5"], what), ([flag, "nan"], what)]
    return rows + ([([flag, HUGE], what)] if high else [])


BATCH = counts("--batch-size", "the batch size must be an integer from 1 to 4096")
IPC = counts("--ipc", "images per class must be an integer from 1 to 10000")

# command -> (base argv, rows). The base is a run that would succeed; each row breaks it.
COMMANDS = {
    "generate": (["generate", "--model", "tiny", "--classes", "0", "--out", "{out}"],
                 MODEL + SAMPLING + AMP + BACKEND + CLASSES + OUT_DIR + BATCH
                 + counts("--per-class", "images per class must be an integer from 1 to 10000")
                 + counts("--steps", "denoising steps must be an integer from 1 to 1000")
                 + [(["--steps", "5"], "--steps applies to DiT models"), (["--sampler", "bogus"], "invalid choice: 'bogus'"),
                    (["--sampler", "ddim"], "--sampler applies to DiT models"),
                    (["--dit-mask", "bogus"], "unknown --dit-mask 'bogus'"), (["--dit-mask", "file:"], "unknown --dit-mask 'file:'"),
                    (["--dit-mask", "attention"], "--dit-mask applies to DiT models"),
                    (["--amp-steps", "2-1"], "range 2-1 in amplification steps runs backwards"),
                    (["--heads", "0"], "heads must be an integer from 1 to 1024")]),
    "distill": (["distill", "--model", "tiny", "--classes", "0", "--ipc", "1", "--no-progress", "--out", "{out}"],
                MODEL + SAMPLING + AMP + BACKEND + CLASSES + OUT_DIR + BATCH + IPC
                + counts("--save-size", "the save size must be an integer from 1 to 4096")
                + counts("--write-workers", "write workers must be an integer from 1 to 1024")
                + [(["--png-level", "10"], "invalid choice: 10"), (["--png-level", "-1"], "invalid choice: -1"),
                   (["--png-level", "x"], "invalid int value: 'x'"),
                   (["--shard", "3/2"], "shard 3/2 does not exist"), (["--shard", "0/0"], "shard 0/0 does not exist"),
                   (["--shard", "x"], "cannot read shard 'x'"), (["--shard", "1/x"], "cannot read shard '1/x'"),
                   (["--ipc"], "expected one argument"), (["--precision", "fp64"], "invalid choice: 'fp64'")]),
    "analyze": (["analyze", "--model", "tiny", "--classes", "0", "--ipc", "1", "--schedules", "none;5", "--out", "{out}"],
                MODEL + SAMPLING + [r for r in AMP if "--beta" not in r[0] and "--no-amp" not in r[0]] + BACKEND
                + CLASSES + OUT_DIR + BATCH + IPC
                + [(["--schedules", ""], "no schedules given"), (["--schedules", "none;5,5"], "it has 2 betas"),
                   (["--schedules", "5;5"], "schedule 5 is given twice"), (["--schedules", "nan"], "betas must be finite"),
                   (["--schedules", "5;;1"], "empty schedule"), (["--beta", "3"], "--beta does not apply to analyze"),
                   (["--no-amp"], "--no-amp does not apply to analyze"),
                   (["--model", "tiny-plain"], "schedule 5 amplifies, but this model has no class tokens")]),
    "compare": (["compare", "--model", "tiny", "--backend", "torch", "--classes", "0"],
                MODEL + SAMPLING + AMP + BACKEND + CLASSES
                + [(["--max-logit-error", "nan"], "max logit error must lie in [0, inf)"),
                   (["--max-logit-error", "-1"], "max logit error must lie in [0, inf)"),
                   (["--max-logit-error", "inf"], "max logit error must lie in [0, inf)"),
                   (["--min-token-agreement", "1.5"], "min token agreement must lie in [0, 1]"),
                   (["--min-token-agreement", "nan"], "min token agreement must lie in [0, 1]"),
                   (["--min-amp-set-agreement", "-0.1"], "min amp set agreement must lie in [0, 1]"),
                   (["--max-rel-logit-error", "nan"], "max relative logit error must lie in [0, inf)"),
                   (["--min-argmax-agreement", "2"], "min argmax agreement must lie in [0, 1]"),
                   (["--min-psnr", "nan"], "min PSNR must be a finite number"),
                   (["--min-psnr", "inf"], "min PSNR must be a finite number"),
                   (["--min-psnr", "x"], "min PSNR must be a finite number")]),
    "demo": (["demo", "--out", "{out}"],
             SAMPLING + [r for r in AMP if "99" not in r[1]] + OUT_DIR + IPC
             + counts("--seeds", "students must be an integer from 1 to 1000")),
    # bench loads its models in worker processes (seconds each), so it gets only the model rows
    # that exercise that path; the rest of MODEL is checked by the same code in the other commands.
    "bench": (["bench", "--model", "tiny", "--plot", "{out}/bench.png"],
              [r for r in MODEL if r[0][:2] in (["--model", "{empty}"], ["--model", "nosuchpreset"])
               or r[0][0] == "--device"]
              + [(["--batch-sizes", ""], "cannot read '' as batch sizes"), (["--batch-sizes", ","], "as batch sizes"),
                 (["--batch-sizes", "4-1"], "runs backwards"), (["--batch-sizes", "1,1"], "lists 1 more than once"),
                 (["--batch-sizes", "0-99999999"], "more than 4096"), (["--batch-sizes", "0"], "batch sizes must be positive"),
                 (["--batch-sizes", "x"], "cannot read 'x' as batch sizes"),
                 (["--warmup", "-1"], "warmup rounds must be an integer from 0"), (["--warmup", HUGE], "warmup rounds"),
                 (["--iters", "0"], "measured rounds must be an integer from 1"), (["--iters", "nan"], "measured rounds"),
                 (["--threads", "0"], "threads must be an integer from 1 to 1024"), (["--threads", HUGE], "threads must"),
                 (["--backends", ","], "--backends is empty"), (["--backends", "torch,bogus"], "unknown backend 'bogus'"),
                 (["--variants", ","], "--variants is empty"), (["--variants", "bogus"], "unknown variant 'bogus'"),
                 (["--json", "{dir}"], "is a directory: give a file name"),
                 (["--markdown", "{dir}"], "is a directory: give a file name"),
                 (["--plot", "{dir}"], "is a directory: give a file name"),
                 (["--plot", "{file}/x.png"], "is a file, not a directory"),
                 (["--json", "{readonly}/x.json"], "is not writable")]),
    "export": (["export", "--model", "tiny", "--out", "{out}"],
               MODEL
               + [(["--out", "{file}"], "exists and is not an export directory"),
                  (["--out", "{full_dir}"], "exists and is not an export directory"),
                  (["--out", "{file}/sub"], "is a file, not a directory"),
                  (["--out", "{readonly}/sub"], "is not writable"),
                  (["--opset", "5"], "the opset must be an integer from 17 to 20"), (["--opset", "x"], "the opset"),
                  (["--max-batch", "0"], "the batch size must be an integer from 1 to 4096"),
                  (["--max-batch", HUGE], "the batch size must be"),
                  (["--amp-layers", ","], "cannot read ',' as amplification layers"),
                  (["--amp-layers", "2-1"], "runs backwards"), (["--amp-layers", "1,1"], "more than once"),
                  (["--amp-layers", "99"], "amplification layer 99 does not exist"),
                  (["--amp-op", "bogus"], "invalid choice: 'bogus'"), (["--dtype", "fp64"], "invalid choice: 'fp64'"),
                  (["--model", "tiny-plain", "--amp-layers", "1"], "needs a model with class tokens")]),
    "build": (["build"],
              [(["{missing}", "--out", "{out}"], "does not exist: make one with `hieramp export"),
               (["{file}", "--out", "{out}"], "is a file, not an export directory"),
               (["{dir}", "--out", "{out}"], "has no manifest.json"),
               (["{dir}", "--out", "{file}/sub"], "is a file, not a directory"),
               (["{dir}", "--out", "{file}"], "exists and is not an engine directory"),
               (["{dir}", "--out", "{full_dir}"], "exists and is not an engine directory"),
               (["{dir}", "--out", "{readonly}/sub"], "is not writable"),
               (["{dir}", "--out", "{out}", "--batch-sizes", ","], "as batch sizes"),
               (["{dir}", "--out", "{out}", "--batch-sizes", "8-1"], "runs backwards"),
               (["{dir}", "--out", "{out}", "--batch-sizes", "1,1"], "more than once"),
               (["{dir}", "--out", "{out}", "--precision", "fp64"], "invalid choice: 'fp64'"),
               (["{dir}", "--out", "{out}", "--flavour", "bogus"], "invalid choice: 'bogus'"),
               (["{dir}"], "the following arguments are required: --out")]),
    "doctor": (["doctor"], [(["extra"], "unrecognized arguments: extra"), (["--bogus"], "unrecognized arguments")]),
    "train": (["train", "--out", "{out}"],
              OUT_DIR + counts("--vae-steps", "VQVAE steps must be an integer from 1")
              + counts("--var-steps", "VAR steps must be an integer from 1")
              + counts("--finetune-steps", "fine-tuning steps must be an integer from 1")
              + [(["--seed", "-1"], "seed must be an integer from 0"), (["--seed", HUGE], "seed must be an integer")]),
    "evaluate": (["evaluate"],
                 [(["--distilled", "{missing}"], "is not a directory"),
                  (["--distilled", "{file}"], "is not a directory"),
                  (["--distilled", "{dir}"], "no images in"),
                  (["--distilled", "{bad_folder_set}"], "is not a digit class folder"),
                  (["--distilled", "{corrupt_set}"], "cannot read image"),
                  (["--distilled", "{text_set}"], "cannot read image"),
                  (["--distilled", "{empty_png_set}"], "cannot read image"),
                  (["--distilled", "{bomb_set}"], "decompression bomb"),
                  (["--distilled", "{unreadable_set}"], "cannot read image"),
                  (["--distilled", "{corrupt_set}", "--json", "{dir}"], "is a directory: give a file name"),
                  (["--distilled", "{corrupt_set}", "--json", "{file}/x.json"], "is a file, not a directory"),
                  (["--distilled", "{corrupt_set}", "--json", "{readonly}/x.json"], "is not writable"),
                  *[(["--distilled", "{corrupt_set}", *row], what)
                    for row, what in counts("--seeds", "students must be an integer from 1 to 1000")],
                  ([], "the following arguments are required: --distilled"),
                  (["--distilled", "{dir}", "--val", "{dir}", "--protocol", "bogus"], "invalid choice: 'bogus'"),
                  *[(["--distilled", "{dir}", "--val", "{dir}", *row], what)
                    for row, what in counts("--epochs", "epochs must be an integer from 1 to 100000")],
                  (["--distilled", "{corrupt_set}", "--epochs", "3"], "--epochs only apply with --val"),
                  (["--distilled", "{corrupt_set}", "--val", "{missing}", "--protocol", "hard"], "{missing}")]),
    "fid": (["fid"],
            [(["{missing}", "{dir}"], "is neither a folder of images nor a .npz of statistics"),
             (["{dir}", "{missing}.npz"], "not found: make it with `hieramp fid"),
             (["{dir}", "{dir}"], "needs the FID Inception network"),
             (["{dir}", "{dir}", "--save-stats", "{out}/x.txt"], "give a file name ending in .npz"),
             (["{dir}", "{dir}", "--json", "{dir}"], "is a directory: give a file name"),
             (["{dir}", "{dir}", "--device", "bogus"], "unknown device 'bogus'"),
             (["{dir}", "{dir}", "--dims", "7"], "invalid choice: 7"),
             *[(["{dir}", "{dir}", *row], what)
               for row, what in counts("--batch-size", "the batch size must be an integer from 1 to 4096")],
             (["{dir}"], "the following arguments are required: b")]),
    "finetune": (["finetune", "--model", "tiny-plain", "--data", "{dir}", "--out", "{out}", "--no-progress"],
                 [(["--device", "bogus"], "unknown device 'bogus'"), (["--device", "meta"], "cannot run models here"),
                  (["--seed", "-1"], "seed must be an integer from 0"), (["--seed", HUGE], "seed must be an integer"),
                  (["--cls-scales", ","], "cannot read ',' as class-token scales"),
                  (["--cls-scales", "3-1"], "runs backwards"), (["--cls-scales", "1,1"], "more than once"),
                  (["--cls-scales", "0-99999999"], "more than 4096"),
                  *counts("--batch-size", "the value must be an integer >= 1", high=False),
                  *counts("--steps", "the value must be an integer >= 1", high=False),
                  (["--workers", "-1"], "the value must be an integer >= 0"),
                  (["--precision", "fp64"], "invalid choice: 'fp64'")]),
    "hieramp": ([], [(["bogus"], "invalid choice: 'bogus'"), ([], "the following arguments are required: COMMAND")]),
}

AS_ROOT = os.geteuid() == 0
CASES = [pytest.param(base + row, what, id=f"{name}: {' '.join(row) or '(none)'} ({i})",
                      marks=[pytest.mark.skipif(AS_ROOT and any(k in " ".join(row) for k in ("{unreadable", "{readonly}")),
                                                reason="root reads and writes whatever the permission bits say"),
                             pytest.mark.skipif(row == ["--device", "cuda"] and torch.cuda.is_available(),
                                                reason="CUDA is available here")])
         for name, (base, rows) in COMMANDS.items() for i, (row, what) in enumerate(rows)]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side=20000) -> bytes:
    """A 200-byte PNG whose header claims side x side pixels: Pillow refuses it when opening."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + png_chunk(b"IEND", b"")


@pytest.fixture
def place(tmp_path, monkeypatch):
    """The files the rows name; the working directory is the place too (default outputs land here)."""
    monkeypatch.chdir(tmp_path)
    var = DIGITS / "ar-ckpt-digits.pth"
    files = {"empty": b"", "text": b"hello, this is not a checkpoint\n", "binary": bytes(range(256)) * 16 + b"\xff",
             "file": b"a plain file\n", "cut": var.read_bytes()[:200], "unreadable": b"0\n"}
    paths = {"out": tmp_path / "out", "missing": tmp_path / "missing.pth", "missing_txt": tmp_path / "missing.txt",
             "var": var, "vae": DIGITS / "vae-digits.pth"}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.pth"
        paths[name].write_bytes(data)
    paths["unreadable"].chmod(0)
    for name in ("dir", "dir_pth", "full_dir", "readonly"):
        paths[name] = tmp_path / ("dir.pth" if name == "dir_pth" else name)
        paths[name].mkdir()
    (paths["full_dir"] / "photo.png").write_bytes(b"not mine")
    paths["readonly"].chmod(0o555)
    for name, content in {"corrupt_set": bytes(range(256)) * 2, "text_set": b"text", "empty_png_set": b"",
                          "bomb_set": bomb_png(), "unreadable_set": b""}.items():
        paths[name] = tmp_path / name
        (paths[name] / "3").mkdir(parents=True)
        (paths[name] / "3" / "0.png").write_bytes(content)
    (paths["unreadable_set"] / "3" / "0.png").chmod(0)
    paths["bad_folder_set"] = tmp_path / "bad_folder_set"
    (paths["bad_folder_set"] / "cats").mkdir(parents=True)
    yield {name: str(path) for name, path in paths.items()}
    paths["readonly"].chmod(0o755)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("argv, what", CASES)
def test_mistake_is_one_line_exit_2_and_writes_nothing(place, tmp_path, capsys, argv, what):
    argv = [arg.format(**place) for arg in argv]
    before = snapshot(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and err.startswith("hieramp")
    assert what.format(**place) in err, err
    assert snapshot(tmp_path) == before


def test_every_command_has_rows():
    from hieramp.cli import SUBCOMMANDS
    assert set(SUBCOMMANDS) <= set(COMMANDS)


@pytest.mark.parametrize("argv", [["generate", "--model", "tiny", "--classes", "0", "--device", "bogus", "--out", "o"],
                                  ["generate", "--model", "tiny", "--classes", "0", "--cfg", "1", "--no-amp", "--rho", "1",
                                   "--out", "o"]])
def test_a_real_process_exits_2_with_one_line(tmp_path, argv):
    """The console entry point turns main's return value into the exit status, usage errors included."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", "import sys; from hieramp.cli import main; sys.exit(main())", *argv],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


# The Python API refuses the same mistakes with the same message, and names no command-line flag.
# (command-line argv after the generate base, or a whole argv; the API call that makes the same mistake)
GENERATE = ["generate", "--model", "tiny", "--classes", "0", "--out", "{out}"]
NAN, INF = float("nan"), float("inf")


def api_run(**kwargs):
    return lambda model, place: hieramp.Generator(model).run([0], **kwargs)


def amp_run(**amp):
    return api_run(amp=hieramp.AmpConfig(**{"layers": (1,), **amp}))


API_PAIRS = [
    (["--device", "bogus"], lambda model, place: hieramp.Generator(model, device="bogus")),
    (["--device", "meta"], lambda model, place: hieramp.Generator(model, device="meta")),
    (["--device", "meta"], lambda model, place: hieramp.resolve_model("tiny", device="meta")),
    (["--device", "cuda:99"], lambda model, place: hieramp.load_model(place["var"], place["vae"], device="cuda:99")),
    (["--seed", "-5"], api_run(seed=-5)),
    (["--seed", HUGE], api_run(seed=2 ** 64)),
    (["--cfg", "nan"], api_run(cfg=NAN)),
    (["--cfg", "inf"], lambda model, place: SamplingParams(guidance=INF)),
    (["--top-p", "7"], api_run(top_p=7.0)),
    (["--top-k", "-3"], api_run(top_k=-3)),
    (["--beta", "nan"], amp_run(beta=NAN)),
    (["--beta=-inf"], amp_run(beta=(5.0, -INF, 5.0))),
    (["--rho", "nan"], amp_run(rho=NAN)),
    (["--rho", "1.5"], amp_run(rho=1.5)),
    (["--amp-layers", "99"], amp_run(layers=(99,))),
    (["--amp-scales", "9"], amp_run(scales=(9,))),
    (["--model", "{empty}", "--vae", "{vae}"], lambda model, place: hieramp.load_model(place["empty"], place["vae"])),
    (["--model", "{var}", "--vae", "{text}"], lambda model, place: hieramp.load_model(place["var"], place["text"])),
    (["--model", "{var}"], lambda model, place: hieramp.resolve_model(place["var"])),
    (["--classes", "{binary}"], lambda model, place: parse_class_spec(place["binary"], 10)),
    (["compare", "--model", "tiny", "--backend", "torch", "--max-logit-error", "nan"],
     lambda model, place: Tolerances(max_logit_error=NAN)),
    (["compare", "--model", "tiny", "--backend", "torch", "--min-token-agreement", "1.5"],
     lambda model, place: Tolerances(min_token_agreement=1.5)),
    (["distill", "--model", "tiny", "--classes", "0", "--ipc", "1", "--out", "{out}", "--seed", "-1"],
     lambda model, place: DistillSettings(seed=-1)),
    (["export", "--model", "tiny", "--out", "{file}/sub"], lambda model, place: export_model(model, place["file"] + "/sub")),
    (["evaluate", "--distilled", "{bomb_set}"], lambda model, place: read_image_folder(place["bomb_set"])),
]


@pytest.mark.parametrize("argv, call", API_PAIRS, ids=[" ".join(argv) for argv, _ in API_PAIRS])
def test_the_api_refuses_the_same_mistake_with_the_same_message(place, tmp_path, capsys, tiny_model, argv, call):
    argv = argv if argv[0] in COMMANDS else GENERATE + argv
    assert main([arg.format(**place) for arg in argv]) == 2
    line = capsys.readouterr().err
    before = snapshot(tmp_path)
    with pytest.raises(hieramp.UserError) as refused:
        call(tiny_model, place)
    assert str(refused.value) in line
    assert " --" not in f" {refused.value}", "an API message must not name a command-line flag"
    assert snapshot(tmp_path) == before
