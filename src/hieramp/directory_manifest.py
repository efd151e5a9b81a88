"""manifest.json of a directory a hieramp command makes (an export, an engine directory): written
into the staging directory, read back with its format checked, and the files it lists verified.
Subclasses say what they describe and which command makes them."""
import hashlib
import json
from pathlib import Path

from .errors import UserError
from .files import sha256_of, write_atomic

MANIFEST = "manifest.json"


class DirectoryManifest:
    FORMAT: str                  # the "format" entry
    FORMAT_VERSION: int
    WHAT: str                    # what the directory is, e.g. "export directory"
    COMMAND: str                 # the command that makes one, e.g. "hieramp export"
    MAKE: str                    # how to make one at {directory}

    def __init__(self, directory: Path, data: dict, text: str):
        self.directory, self.data = Path(directory), data
        self.artifact_id = hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def write(cls, directory: Path, data: dict):
        data = {"format": cls.FORMAT, "format_version": cls.FORMAT_VERSION, **data}
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        write_atomic(Path(directory) / MANIFEST, text.encode())
        return cls(directory, data, text)

    @classmethod
    def describes(cls, directory) -> bool:
        """Whether `directory` holds a manifest of this kind (an earlier one that may be replaced)."""
        try:
            return json.loads((Path(directory) / MANIFEST).read_text()).get("format") == cls.FORMAT
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            return False

    @classmethod
    def read(cls, directory):
        directory = Path(directory)
        path = directory / MANIFEST
        redo = f"re-run `{cls.COMMAND}`"
        if directory.exists() and not directory.is_dir():
            raise UserError(f"{directory} is a file, not an {cls.WHAT}: give the directory `{cls.COMMAND}` made")
        if not directory.is_dir():
            raise UserError(f"{cls.WHAT} {directory} does not exist: make one with `{cls.MAKE.format(directory=directory)}`")
        try:
            text = path.read_text()
            data = json.loads(text)
        except FileNotFoundError:
            raise UserError(f"{directory} has no {MANIFEST}: is it a directory made by `{cls.COMMAND}`?") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {path} ({err}): {redo}") from None
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise UserError(f"{path} is not a hieramp {cls.WHAT} manifest: {redo}")
        if data.get("format_version") != cls.FORMAT_VERSION:
            raise UserError(f"{path} has format version {data.get('format_version')}, this hieramp reads "
                            f"{cls.FORMAT_VERSION}: {redo} with this version")
        return cls(directory, data, text)

    def verify_files(self):
        """Every file listed in the manifest exists and has its recorded sha256."""
        for name, digest in self.data["files"].items():
            path = self.directory / name
            if not path.is_file():
                raise UserError(f"{path} is missing from the {self.WHAT}: re-run `{self.COMMAND}`")
            if sha256_of(path) != digest:
                raise UserError(f"{path} is damaged (its sha256 differs from the manifest's): re-run `{self.COMMAND}`")
