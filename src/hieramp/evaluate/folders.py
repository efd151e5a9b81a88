"""Class folders of a distilled or validation set, matched by class across the two sets.

A class folder is named by a wnid (`n01440764`, as `hieramp distill` writes for ImageNet models)
or by an index (`00000`-style or `0`..`K-1`). Two sets are matched by class, never by position:
wnids against wnids, indices against indices, and an index against a wnid as the ImageNet-1k
class of that index (the order of `hieramp.classes`).
"""
from dataclasses import dataclass
from pathlib import Path

from ..classes import IMAGENET_NUM_CLASSES, index_of_wnid, wnid_of
from ..errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ClassFolders:
    root: Path
    folders: dict                  # class key (wnid or int index) -> folder

    @property
    def uses_wnids(self) -> bool:
        return any(isinstance(key, str) for key in self.folders)


def _class_key(name: str):
    if name.isdigit():
        return int(name)
    if len(name) == 9 and name[0] == "n" and name[1:].isdigit():
        return name
    return None


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def images_under(folder) -> list:
    """Every image file below `folder`, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if is_image(p))


def class_folders(root, what: str) -> ClassFolders:
    """The class folders of `root`; files at the top level (run.json, grids) are ignored."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{what} {root} is not a directory: pass a folder of class folders (ImageFolder layout)")
    folders = {}
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        key = _class_key(entry.name)
        if key is None:
            raise UserError(f"{entry} is not a class folder: name class folders by wnid (n01440764) or index (00000, 0)")
        if key in folders:
            raise UserError(f"{folders[key]} and {entry} name the same class {key}: keep one of them")
        folders[key] = entry
    if not folders:
        raise UserError(f"{what} {root} has no class folders: expected one folder per class (wnid or index)")
    if any(isinstance(k, str) for k in folders) and any(isinstance(k, int) for k in folders):
        raise UserError(f"{what} {root} mixes wnid and index class folders: name them all one way")
    return ClassFolders(root, folders)


def _imagenet_index(key) -> int:
    return key if isinstance(key, int) else index_of_wnid(key)


def _as_wnid(key, side: ClassFolders):
    if isinstance(key, str):
        return key
    if key >= IMAGENET_NUM_CLASSES:
        raise UserError(f"class folder {side.folders[key]} cannot match a wnid folder: "
                        f"index folders then name ImageNet-1k classes 0-{IMAGENET_NUM_CLASSES - 1}")
    return wnid_of(key)


def _describe(key) -> str:
    if isinstance(key, str):
        return f"{key} (ImageNet class {_imagenet_index(key)})"
    return f"{key}"


@dataclass(frozen=True)
class MatchedClasses:
    """Classes present in both sets, in label order (ImageNet order for wnids, index order else)."""
    names: tuple                   # per label: wnid or index
    train: tuple                   # per label: folder in the distilled set
    val: tuple                     # per label: folder in the validation set
    imagenet_indices: tuple | None # per label: its ImageNet-1k index, where the classes have one

    def __len__(self):
        return len(self.names)


def match_classes(distilled: ClassFolders, val: ClassFolders) -> MatchedClasses:
    """Pair the class folders of the two sets; a class on one side only is an error naming it."""
    wnids = distilled.uses_wnids or val.uses_wnids
    key = (lambda k, side: _as_wnid(k, side)) if wnids else (lambda k, side: k)
    train = {key(k, distilled): f for k, f in distilled.folders.items()}
    test = {key(k, val): f for k, f in val.folders.items()}
    for only, side, other in ((set(train) - set(test), distilled, val), (set(test) - set(train), val, distilled)):
        if only:
            first = sorted(only, key=str)[0]
            more = f" and {len(only) - 1} more" if len(only) > 1 else ""
            raise UserError(f"class {_describe(first)}{more} is in {side.root} but not in {other.root}: "
                            f"both sets must hold the same classes")
    names = sorted(train, key=_imagenet_index if wnids else int)
    all_imagenet = wnids or max(names) < IMAGENET_NUM_CLASSES
    return MatchedClasses(tuple(names), tuple(train[n] for n in names), tuple(test[n] for n in names),
                          tuple(_imagenet_index(n) for n in names) if all_imagenet else None)


def image_files(folders) -> tuple[list, list]:
    """(paths, labels): every image of the folders, label i for the i-th folder, searched recursively."""
    paths, labels = [], []
    for label, folder in enumerate(folders):
        found = images_under(folder)
        if not found:
            raise UserError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        paths += found
        labels += [label] * len(found)
    return paths, labels
