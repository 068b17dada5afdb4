"""Production settings: the app serves its own static files (the admin's CSS, the API docs' Swagger UI) with DEBUG
off, and refuses to start without the public address its unsubscribe links need."""

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "SECRET_KEY": "test-only-key",
    "SITE_URL": "https://mail.example.com",
    "ALLOWED_HOSTS": "127.0.0.1",
    "DJANGO_SETTINGS_MODULE": "saas.settings",
    "PATH": os.environ["PATH"],
    "PYTHONPATH": str(ROOT),
}
SERVE = (
    "from wsgiref.simple_server import make_server, WSGIRequestHandler\n"
    "from saas.wsgi import application\n"
    "WSGIRequestHandler.log_message = lambda *a: None\n"
    "server = make_server('127.0.0.1', 0, application)\n"
    "print(server.server_port, flush=True)\n"
    "server.serve_forever()\n"
)


def run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**PRODUCTION, **env}, timeout=120
    )


def test_the_served_app_returns_the_admin_css_with_debug_off(tmp_path):
    env = {**PRODUCTION, "STATIC_ROOT": str(tmp_path / "static")}
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stderr
    assert (tmp_path / "static" / "admin" / "css" / "base.css").is_file()
    server = subprocess.Popen([sys.executable, "-c", SERVE], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/admin/css/base.css", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/css")
            assert b"body" in response.read()
        # The API's docs page, and Swagger UI's scripts and styles it names, all from this server (no CDN).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/docs/", timeout=30) as response:
            page = response.read().decode()
        assets = re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css|png))"', page)
        assert len(assets) >= 3 and not re.search(r'(?:src|href)="(?:https?:)?//', page), page[:500]
        for asset in assets:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{asset}", timeout=30) as response:
                assert response.status == 200 and len(response.read()) > 100, asset
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_debug_off_without_site_url_refuses_to_start():
    env = {k: v for k, v in PRODUCTION.items() if k != "SITE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SITE_URL" in result.stderr
    assert "unsubscribe" in result.stderr  # it says why


def test_debug_off_with_site_url_starts_and_links_there():
    result = run(
        "import django; django.setup(); from campaigns.unsubscribe import unsubscribe_url; print(unsubscribe_url(1, 2))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://mail.example.com/u/")


def test_the_image_collects_static_files_and_compose_needs_a_site_url():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "collectstatic --noinput" in dockerfile
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    site_url = compose["services"]["web"]["environment"]["SITE_URL"]
    assert site_url.startswith("${SITE_URL:?"), site_url  # no silent localhost default
