"""Safe unzipping of a ZIP archive a user sent.

:class:`SafeUnzip` extracts every file of the archive into its work directory and registers
each as an output, under its path in the archive. It refuses, naming the entry:

- a path that would leave the directory (``../x``, ``/etc/x``, ``C:\\x``): zip-slip;
- a symbolic link;
- more than ``max_entries`` entries, more than ``max_total`` bytes once uncompressed (counted
  as the bytes come out, not as the archive claims), or an entry that expands more than
  ``max_ratio`` times its compressed size (entries under 1 MiB aside): a zip bomb;
- an encrypted entry, or an archive that cannot be read.

A backslash in a name is taken as a path separator (archives made on Windows), and empty
and ``.`` parts are dropped. Nothing half-extracted is registered: a refusal fails the step.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.errors import TaskError
from gristmill.library.base import LibraryTask
from gristmill.library.reading import judge

_CHUNK = 1 << 16
_SMALL = 1 << 20  # the ratio is not held against entries that expand to less than this


def safe_name(name: str) -> str:
    """The relative path an archive entry may be extracted to; :class:`TaskError` if none."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise TaskError(f"the archive's entry {name!r} has an absolute path; refused")
    if ".." in parts:
        raise TaskError(f"the archive's entry {name!r} points outside the archive; refused")
    if not parts:
        raise TaskError(f"the archive's entry {name!r} has no name; refused")
    return str(PurePosixPath(*parts))


class SafeUnzip(LibraryTask):
    """Extract a ZIP archive within limits (see the module's docstring)."""

    title = "Unzip"
    description = "Extracts the files of a ZIP archive, within limits."

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_total: int = 1 << 30,
        max_ratio: int = 200,
        **options: Any,
    ):
        self.max_entries, self.max_total, self.max_ratio = max_entries, max_total, max_ratio
        super().__init__(entries=max_entries, total=max_total, ratio=max_ratio, **options)

    def is_applicable(self, run: RunContext) -> bool:
        # A workbook is a ZIP container too, but not an archive to unpack.
        return bool(self.sources) or (
            bool(run.inputs) and judge(run.input.name, run.input.path) == "zip"
        )

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        file = self.data(run)
        target = run.workdir / "files"
        try:
            with zipfile.ZipFile(file.path) as archive:
                entries = archive.infolist()
                if len(entries) > self.max_entries:
                    raise TaskError(
                        f"{file.name} holds {len(entries):,} entries; at most "
                        f"{self.max_entries:,} are extracted"
                    )
                with run.stage("extracting"):
                    names = self._extract(run, archive, entries, target)
        except (zipfile.BadZipFile, EOFError, NotImplementedError, OSError) as error:
            shutil.rmtree(target, ignore_errors=True)
            raise TaskError(f"{file.name} is not a readable ZIP archive: {error}") from None
        except TaskError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        for name in names:
            run.output(target / name, name=name)
        total = sum((target / name).stat().st_size for name in names)
        run.log(f"{len(names):,} files extracted, {total:,} bytes")
        return {"file": file.name, "files": names, "bytes": total}

    def _extract(
        self,
        run: RunContext,
        archive: zipfile.ZipFile,
        entries: list[zipfile.ZipInfo],
        target: Path,
    ) -> list[str]:
        written = 0
        names: list[str] = []
        for number, entry in enumerate(entries, start=1):
            run.progress(number - 1, len(entries))
            run.check_cancelled()
            mode = entry.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise TaskError(
                    f"the archive's entry {entry.filename!r} is a symbolic link; refused"
                )
            name = safe_name(entry.filename)
            if entry.is_dir():
                continue
            if entry.flag_bits & 0x1:
                raise TaskError(f"the archive's entry {entry.filename!r} is encrypted; refused")
            path = target / name
            if path.exists():
                raise TaskError(f"the archive holds {name!r} twice; refused")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                out = path.open("xb")
            except OSError as error:
                raise TaskError(
                    f"the archive's entry {entry.filename!r} cannot be extracted: "
                    f"{error.strerror or error}"
                ) from None
            allowed = max(entry.compress_size * self.max_ratio, _SMALL)
            size = 0
            with archive.open(entry) as source, out:
                while chunk := source.read(_CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    if size > allowed:
                        raise TaskError(
                            f"the archive's entry {entry.filename!r} expands more than "
                            f"{self.max_ratio} times its compressed size (a zip bomb?); refused"
                        )
                    if written > self.max_total:
                        raise TaskError(
                            f"the archive expands to more than {self.max_total:,} bytes; refused"
                        )
                    out.write(chunk)
            names.append(name)
        run.progress(len(entries), len(entries))
        return names

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict):
            return super().context(run, result)
        return {
            "summary": (
                f"{len(result['files']):,} files ({result['bytes']:,} bytes) from {result['file']}"
            ),
            "files": result["files"],
        }
