"""Settings helpers fail loudly, docker-compose is well formed, and every app has the expected shape."""

import tomllib
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from saas.env import database_from_url, env_bool, env_choice, env_int

ROOT = Path(__file__).resolve().parent.parent


def test_env_helpers_fail_loudly_with_the_variable_name(monkeypatch):
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
        env_bool("X_BOOL")
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_INT='ten' is not an integer"):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("X_INT", 1, minimum=1)
    monkeypatch.setenv("X_CHOICE", "carrier-pigeon")
    with pytest.raises(ImproperlyConfigured, match="one of: file, smtp"):
        env_choice("X_CHOICE", "file", ("file", "smtp"))


def test_env_helpers_read_good_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_INT", "42")
    assert env_bool("X_BOOL") is True
    assert env_int("X_INT", 1) == 42
    assert env_bool("X_UNSET", True) is True


def test_database_url_parsing(tmp_path):
    pg = database_from_url("postgres://bob:s%40cret@db.internal:6543/mail", base_dir=tmp_path)
    assert pg["ENGINE"] == "django.db.backends.postgresql"
    assert (pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"], pg["NAME"]) == (
        "bob",
        "s@cret",
        "db.internal",
        "6543",
        "mail",
    )
    assert database_from_url("", base_dir=tmp_path)["ENGINE"] == "django.db.backends.sqlite3"
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        database_from_url("mysql://x/y", base_dir=tmp_path)


def test_docker_compose_runs_web_worker_and_beat_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    images = {services[name]["image"] for name in ("web", "worker", "beat")}
    assert len(images) == 1
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
    assert "celery -A saas worker" in services["worker"]["command"]
    assert "celery -A saas beat" in services["beat"]["command"]
    assert (ROOT / "Dockerfile").is_file()


def test_the_image_can_carry_the_local_embedder_workers_route_with():
    """ROUTING_EMBEDDINGS=local needs the `routing` extra in the image (the image had only the base install)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    build = compose["services"]["worker"]["build"]
    assert build["context"] == "." and build["args"]["EXTRAS"] == "${IMAGE_EXTRAS:-}"
    assert compose["services"]["worker"]["environment"]["ROUTING_EMBEDDINGS"] == "${ROUTING_EMBEDDINGS:-bedrock}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ARG EXTRAS=""' in dockerfile and '-e ".[$EXTRAS]"' in dockerfile
    assert "download.pytorch.org/whl/cpu" in dockerfile  # never the CUDA build from PyPI
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "sentence-transformers" in " ".join(extras["routing"])


def test_web_process_does_not_import_heavy_model_libraries():
    """The web process stays light: llama.cpp is imported only where the local model runs."""
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup(); import saas.urls, campaigns.admin, campaigns.tasks; "
        "print(','.join(m for m in ('llama_cpp',) if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={"DJANGO_SETTINGS_MODULE": "saas.settings", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert out.stdout.strip() == ""
