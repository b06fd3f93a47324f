"""The docker-compose deployment, checked statically (no Docker engine runs here):
the file is valid for Debian's docker-compose, nginx gets the very template that
tests/test_topology.py runs natively, rendered from the same variables, and the
rendered configuration passes ``nginx -t``."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.services import require_tool
from tests.topology import (
    NGINX_MAIN,
    NGINX_TEMPLATE,
    NGINX_VARIABLES,
    ROOT,
    nginx_binary,
    nginx_prefix,
)


def compose(*args: str, secret: str | None = "compose-check") -> subprocess.CompletedProcess[str]:
    binary = require_tool("docker-compose")
    env = {key: value for key, value in os.environ.items() if key != "LIVEBLOG_SECRET_KEY"}
    if secret is not None:
        env["LIVEBLOG_SECRET_KEY"] = secret
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_without_a_shared_secret_key() -> None:
    result = compose("config", "-q", secret=None)
    assert result.returncode != 0
    assert "LIVEBLOG_SECRET_KEY" in result.stderr


def test_compose_runs_migrations_once_before_the_app_and_mounts_the_tested_template() -> None:
    result = compose("config")
    assert result.returncode == 0, result.stderr
    config = result.stdout
    assert f"{NGINX_TEMPLATE}:/etc/nginx/templates/liveblog.conf.template:ro" in config
    assert f"{NGINX_MAIN}:/etc/nginx/nginx.conf:ro" in config
    # The app waits for the one-shot migration to have succeeded.
    app = config.split("\n  app:\n", 1)[1].split("\n  migrate:\n", 1)[0]
    assert re.search(r"migrate:\n\s+condition: service_completed_successfully", app), app
    migrate = config.split("\n  migrate:\n", 1)[1].split("\n  nginx:\n", 1)[0]
    assert "- db\n    - upgrade" in migrate, migrate
    # Both sides of a crowd's connections get a long accept queue (docs/scaling.md).
    nginx = config.split("\n  nginx:\n", 1)[1].split("\n  postgres:\n", 1)[0]
    for service in (app, nginx):
        assert re.search(r"sysctls:\n\s+net.core.somaxconn: ['\"]?16384", service), service
    # nginx renders exactly the variables the native test renders.
    found = re.search(r"NGINX_ENVSUBST_FILTER: \^\((.+)\)\$", config)
    assert found is not None
    assert set(found.group(1).split("|")) == set(NGINX_VARIABLES)


def test_rendered_configuration_passes_nginx_t(tmp_path: Path) -> None:
    binary = nginx_binary()
    main = nginx_prefix(
        tmp_path,
        {"NGINX_PORT": "127.0.0.1:8080", "LIVEBLOG_UPSTREAM_SERVERS": "server 127.0.0.1:8000;"},
    )
    text = (tmp_path / "conf.d" / "liveblog.conf").read_text()
    assert "${" not in text  # every variable was rendered
    assert "$proxy_add_x_forwarded_for" in text  # and nginx's own were left alone
    result = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "directive",
    [
        "proxy_buffering off;",
        "proxy_read_timeout 1h;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "keepalive 64;",
        "gzip off;",
    ],
)
def test_template_is_configured_for_event_streams(directive: str) -> None:
    assert directive in NGINX_TEMPLATE.read_text()
