"""The API contract is guarded: `buf breaking`, as `make lint` runs it, fails on a
renamed field and names it, both between two copies of protos/ and for an
uncommitted edit against the `main` branch of a git work tree."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
# `make lint` and `make test` install it (npm, pinned in the Makefile).
BUF = ROOT / ".tools" / "node_modules" / ".bin" / "buf"
FIELD = re.compile(r"^(\s+)((?:repeated |optional )?[\w.]+) (\w+) = (\d+);", re.MULTILINE)


@pytest.fixture(scope="module")
def buf() -> str:
    if BUF.exists():
        return str(BUF)
    found = shutil.which("buf")
    if found is None:
        pytest.skip(f"buf is not installed ({BUF}); `make lint` or `make test` installs it")
    return found


def copy_module(dest: Path) -> Path:
    """protos/ and the buf.yaml that makes it a module, as in the repository."""
    shutil.copytree(ROOT / "protos", dest / "protos")
    shutil.copy2(ROOT / "buf.yaml", dest / "buf.yaml")
    return dest


def rename_a_field(module: Path) -> tuple[str, str, str]:
    """Rename the first field of image_service.proto; returns (message, old, new)."""
    proto = module / "protos" / "titan" / "gateway" / "v1" / "image_service.proto"
    text = proto.read_text(encoding="utf-8")
    field = FIELD.search(text)
    assert field, "image_service.proto has no field to rename"
    message = re.findall(r"^message (\w+)", text[: field.start()], re.MULTILINE)[-1]
    old = field.group(3)
    new = f"{old}_renamed"
    edited = f"{field.group(1)}{field.group(2)} {new} = {field.group(4)};"
    proto.write_text(text[: field.start()] + edited + text[field.end() :], encoding="utf-8")
    return message, old, new


def breaking(buf: str, cwd: Path, against: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [buf, "breaking", "--against", against],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_unchanged_protos_are_not_breaking(buf: str, tmp_path: Path) -> None:
    copy_module(tmp_path / "before")
    copy_module(tmp_path / "after")
    result = breaking(buf, tmp_path / "after", str(tmp_path / "before"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_renamed_field_fails_and_is_named(buf: str, tmp_path: Path) -> None:
    copy_module(tmp_path / "before")
    after = copy_module(tmp_path / "after")
    message, old, new = rename_a_field(after)
    result = breaking(buf, after, str(tmp_path / "before"))
    assert result.returncode != 0
    expected = f'on message "{message}" changed name from "{old}" to "{new}"'
    assert expected in result.stdout, result.stdout + result.stderr
    assert "image_service.proto" in result.stdout


def test_uncommitted_edit_fails_against_main(buf: str, tmp_path: Path) -> None:
    """What `make lint` runs (`buf breaking --against '.git#branch=main'`) in a work
    tree: committed main passes against itself, an uncommitted rename does not."""
    repo = copy_module(tmp_path / "repo")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=repo, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "protos")
    clean = breaking(buf, repo, ".git#branch=main")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    message, old, new = rename_a_field(repo)
    result = breaking(buf, repo, ".git#branch=main")
    assert result.returncode != 0
    expected = f'on message "{message}" changed name from "{old}" to "{new}"'
    assert expected in result.stdout, result.stdout + result.stderr
