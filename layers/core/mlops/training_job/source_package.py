"""The training job's source package (``sagemaker_submit_directory``), built from the code
that runs the retrainer: ``entry.py``, the ``mlops`` package, ``requirements.txt`` (the
training pins) and the user's model code, when the config names a factory.

The retrainer builds it from its own layers and uploads it under its sha256 on first use, so
a deployed stack needs no extra command, and a new deployment (new code) gets a new package.
The archive is byte-for-byte reproducible (sorted names, fixed times and owners), so the same
code has the same digest and is uploaded once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlops
from mlops.training_job.entry import MODEL_CODE

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
SHIM = b'''"""SageMaker's sagemaker_program: see mlops/training_job/entry.py."""

import sys

from mlops.training_job.entry import main

sys.exit(main())
'''
_SKIP_DIRS = frozenset({"__pycache__", "tests"})


@dataclass(frozen=True)
class SourcePackage:
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def build(model_code: Path | None = None, package: Path | None = None) -> SourcePackage:
    """The package's tar.gz bytes; ``package`` is the mlops folder (this process's)."""
    root = package or Path(mlops.__file__).parent
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "entry.py", SHIM)
        _add(tar, "requirements.txt", REQUIREMENTS.read_bytes())
        for path in _files(root):
            _add(tar, f"mlops/{path.relative_to(root).as_posix()}", path.read_bytes())
        if model_code is not None and model_code.is_dir():
            for path in _files(model_code):
                _add(
                    tar,
                    f"{MODEL_CODE}/{path.relative_to(model_code).as_posix()}",
                    path.read_bytes(),
                )
    return SourcePackage(gzip.compress(raw.getvalue(), compresslevel=6, mtime=0))


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not _SKIP_DIRS & set(parts) and path.suffix != ".pyc":
            yield path


def _add(tar: tarfile.TarFile, name: str, body: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    info.mtime = 0
    info.mode = 0o644
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(body))
