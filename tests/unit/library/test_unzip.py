"""SafeUnzip extracts archives within limits, and refuses zip-slip, symlinks and zip bombs."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from gristmill import TaskError
from gristmill.library import SafeUnzip
from gristmill.library.unzip import safe_name
from tests.unit.library.conftest import Runner


def archive(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as made:
        for name, data in entries.items():
            made.writestr(name, data)
    return path


def test_files_are_extracted_and_registered_under_their_paths(
    run_task: Runner, tmp_path: Path
) -> None:
    path = archive(tmp_path / "a.zip", {"data/one.json": b"[1]", "two.csv": b"a\n1\n"})

    result, run = run_task(SafeUnzip(), path)

    assert result == {"file": "a.zip", "files": ["data/one.json", "two.csv"], "bytes": 7}
    assert [(o.name, o.path.read_bytes()) for o in run.outputs] == [
        ("data/one.json", b"[1]"),
        ("two.csv", b"a\n1\n"),
    ]


def test_backslashes_in_names_are_path_separators(run_task: Runner, tmp_path: Path) -> None:
    path = archive(tmp_path / "a.zip", {"dir\\sub\\x.json": b"{}"})

    result, run = run_task(SafeUnzip(), path)

    assert result["files"] == ["dir/sub/x.json"]
    assert run.outputs[0].path == run.workdir.resolve() / "files" / "dir" / "sub" / "x.json"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.txt", "the archive's entry '../evil.txt' points outside the archive; refused"),
        ("a/../../evil", "the archive's entry 'a/../../evil' points outside the archive; refused"),
        (
            "..\\evil.txt",
            "the archive's entry '..\\\\evil.txt' points outside the archive; refused",
        ),
        ("/etc/evil", "the archive's entry '/etc/evil' has an absolute path; refused"),
        ("C:\\evil", "the archive's entry 'C:\\\\evil' has an absolute path; refused"),
    ],
)
def test_a_zip_slip_entry_is_refused(
    run_task: Runner, tmp_path: Path, name: str, message: str
) -> None:
    path = archive(tmp_path / "a.zip", {"ok.txt": b"x", name: b"pwned"})

    with pytest.raises(TaskError) as error:
        run_task(SafeUnzip(), path)

    assert str(error.value) == message
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "work" / "files").exists()


def test_a_symbolic_link_is_refused(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as made:
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        made.writestr(link, "/etc/passwd")

    with pytest.raises(TaskError) as error:
        run_task(SafeUnzip(), path)

    assert str(error.value) == "the archive's entry 'link' is a symbolic link; refused"


def test_a_zip_bomb_is_stopped_by_its_ratio(run_task: Runner, tmp_path: Path) -> None:
    path = archive(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (20 << 20)})

    with pytest.raises(TaskError) as error:
        run_task(SafeUnzip(), path)

    assert str(error.value) == (
        "the archive's entry 'zeros.bin' expands more than 200 times its compressed size "
        "(a zip bomb?); refused"
    )
    assert not (tmp_path / "work" / "files").exists()


def test_the_total_size_is_counted_as_the_bytes_come_out(run_task: Runner, tmp_path: Path) -> None:
    path = archive(tmp_path / "a.zip", {f"{n}.txt": bytes(range(256)) * 8 for n in range(4)})

    with pytest.raises(TaskError) as error:
        run_task(SafeUnzip(max_total=5000), path)

    assert str(error.value) == "the archive expands to more than 5,000 bytes; refused"


def test_too_many_entries_are_refused(run_task: Runner, tmp_path: Path) -> None:
    path = archive(tmp_path / "a.zip", {f"{n}.txt": b"x" for n in range(11)})

    with pytest.raises(TaskError) as error:
        run_task(SafeUnzip(max_entries=10), path)

    assert str(error.value) == "a.zip holds 11 entries; at most 10 are extracted"


def test_a_damaged_archive_is_refused(run_task: Runner, tmp_path: Path) -> None:
    whole = archive(tmp_path / "whole.zip", {"a.txt": b"x" * 1000})
    path = tmp_path / "a.zip"
    path.write_bytes(whole.read_bytes()[:-30])

    with pytest.raises(TaskError) as error:
        run_task(SafeUnzip(), path)

    assert str(error.value).startswith("a.zip is not a readable ZIP archive: ")


def test_safe_names_drop_empty_and_dot_parts() -> None:
    assert safe_name("a//./b\\c.txt") == "a/b/c.txt"


def test_applies_to_archives_but_not_to_workbooks(tmp_path: Path) -> None:
    import openpyxl

    from tests.unit.library.conftest import context

    book = openpyxl.Workbook()
    book.save(tmp_path / "book.xlsx")
    plain = archive(tmp_path / "a.zip", {"a.json": b"[]"})
    task = SafeUnzip()
    assert task.is_applicable(context(plain, tmp_path)) is True
    assert task.is_applicable(context(tmp_path / "book.xlsx", tmp_path)) is False


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            {"x" * 300: b"x"},
            f"the archive's entry {'x' * 300!r} cannot be extracted: File name too long",
        ),
        (
            {"a": b"x", "a/b": b"y"},
            "the archive's entry 'a/b' cannot be extracted: File exists",
        ),
    ],
    ids=["long", "file-and-folder"],
)
def test_a_name_the_disk_refuses_is_named(
    run_task: Runner, tmp_path: Path, entries: dict[str, bytes], message: str
) -> None:
    path = archive(tmp_path / "a.zip", entries)

    with pytest.raises(TaskError) as error:
        run_task(SafeUnzip(), path)

    assert str(error.value) == message
