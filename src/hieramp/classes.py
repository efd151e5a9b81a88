"""ImageNet-1k class table and the class specs that pick which classes to generate.

Index i is the i-th wnid in sorted order, the order torchvision's ImageFolder gives, so the
classes of a named subset come back as sorted indices too. Wnids and named subsets only exist
in the 1000-class ImageNet label space; other label spaces use plain indices.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

from hieramp.errors import UserError

IMAGENET_NUM_CLASSES = 1000

_TOKEN = re.compile(r"(\d+)(?:-(\d+))?|n\d{8}")


def _data_text(name: str) -> str:
    return resources.files("hieramp").joinpath("data", name).read_text(encoding="utf-8")


@cache
def imagenet_classes() -> list[tuple[int, str, str]]:
    """(index, wnid, name) for the 1000 ImageNet-1k classes, in index order."""
    rows = []
    for line in _data_text("imagenet_classes.tsv").splitlines()[1:]:
        index, wnid, name = line.split("\t")
        rows.append((int(index), wnid, name))
    return rows


@cache
def _index_of_wnid() -> dict[str, int]:
    return {wnid: index for index, wnid, _ in imagenet_classes()}


@cache
def _subsets() -> dict[str, list[str]]:
    return json.loads(_data_text("subsets.json"))


def _spec_help() -> str:
    return "use ranges like 0-9,15, a file of indices or wnids, or one of " + ", ".join(_subsets())


def _check_index(index: int, num_classes: int) -> None:
    if not 0 <= index < num_classes:
        raise UserError(
            f"class {index} is out of range: this model has {num_classes} classes (0-{num_classes - 1})"
        )


def _require_imagenet(what: str, num_classes: int) -> None:
    if num_classes != IMAGENET_NUM_CLASSES:
        raise UserError(
            f"{what} only exists for 1000-class ImageNet models: this model has {num_classes} "
            f"classes, so use indices 0-{num_classes - 1}"
        )


def wnid_of(index: int) -> str:
    _check_index(index, IMAGENET_NUM_CLASSES)
    return imagenet_classes()[index][1]


def name_of(index: int) -> str:
    _check_index(index, IMAGENET_NUM_CLASSES)
    return imagenet_classes()[index][2]


def index_of_wnid(wnid: str) -> int:
    """The ImageNet-1k index of a wnid."""
    if wnid not in _index_of_wnid():
        raise UserError(f"unknown wnid {wnid}: it is not one of the 1000 ImageNet-1k classes")
    return _index_of_wnid()[wnid]


def _resolve(token: str, num_classes: int) -> list[int]:
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise UserError(
            f"bad class '{token}': expected an index, a range like 0-9 or a wnid like n01440764"
        )
    if token.startswith("n"):
        _require_imagenet(f"wnid {token}", num_classes)
        return [index_of_wnid(token)]
    start = int(match[1])
    end = start if match[2] is None else int(match[2])
    if start > end:
        raise UserError(f"bad range {token}: the start is above the end, write it as {end}-{start}")
    _check_index(end, num_classes)
    return list(range(start, end + 1))


def _file_tokens(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"class file '{path}' is not text: give a text file of indices or wnids") from None
    except OSError as err:
        raise UserError(f"cannot read class file '{path}': {err.strerror}") from None
    tokens = []
    for line in text.splitlines():
        tokens += [t for t in re.split(r"[,\s]+", line.split("#", 1)[0]) if t]
    if not tokens:
        raise UserError(f"class file '{path}' lists no classes: put one index or wnid per line")
    return tokens


def parse_class_spec(spec: str, num_classes: int = IMAGENET_NUM_CLASSES) -> list[int]:
    """Class indices named by `spec`, duplicates dropped, in first-seen order.

    `spec` is a list of indices and ranges (`0-99,207`), a named subset (`imagenette`,
    `imagewoof`, `imagenet-100`, any case), or the path of a text file of indices, ranges or
    wnids (one per line or comma-separated, `#` comments).
    """
    text = spec.strip()
    if not text:
        raise UserError(f"empty class spec: {_spec_help()}")
    subset = _subsets().get(text.lower())
    if subset is not None:
        _require_imagenet(f"subset {text}", num_classes)
        return sorted(_index_of_wnid()[wnid] for wnid in subset)
    tokens = [t.strip() for t in text.split(",")]
    if not all(_TOKEN.fullmatch(t) for t in tokens):
        path = Path(text).expanduser()
        if path.is_dir():
            raise UserError(f"class file '{text}' is a directory: give a text file of indices or wnids")
        if path.is_file():
            tokens = _file_tokens(path)
        elif "/" in text or "\\" in text or path.suffix:
            raise UserError(
                f"class file '{text}' not found: give the path of a text file of indices or wnids"
            )
        else:
            raise UserError(f"unknown class spec '{text}': {_spec_help()}")
    indices = [index for token in tokens for index in _resolve(token, num_classes)]
    return list(dict.fromkeys(indices))


def folder_name(index: int, num_classes: int) -> str:
    """The folder a class's images go in: its wnid for ImageNet-1k, else its index, zero-padded to
    the width of the largest index so that ImageFolder's name order is the class order."""
    if num_classes == IMAGENET_NUM_CLASSES:
        return wnid_of(index)
    _check_index(index, num_classes)
    return str(index).zfill(len(str(num_classes - 1)))


def class_mapping(indices: list[int], num_classes: int) -> list[dict]:
    """One {index, wnid, name} record per class, for a dataset's mapping.json."""
    imagenet = num_classes == IMAGENET_NUM_CLASSES
    records = []
    for index in indices:
        _check_index(index, num_classes)
        records.append(
            {
                "index": index,
                "wnid": wnid_of(index) if imagenet else None,
                "name": name_of(index) if imagenet else None,
            }
        )
    return records
