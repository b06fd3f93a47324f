"""The Docker image, built from the repository's Dockerfile and run for real.

No image registry can be reached here, so the base is made on this machine: Debian
bookworm by ``debootstrap`` (with python3 and its venv module), imported with
``docker import`` as ``liveblog-base:bookworm`` (kept in Docker's store: made once per
machine). The Python packages come from a directory of wheels that the host's pip builds
(``.cache/docker-wheels``, also kept), served to the build over HTTP: the Dockerfile's
``PIP_NO_INDEX``/``PIP_FIND_LINKS`` build arguments. Users build the same Dockerfile
from the public ``python:3.12-slim`` and PyPI.

Then the topology of docker-compose.yml, with the machine's own PostgreSQL and Redis
(host networking): the one-shot ``liveblog db upgrade`` container, and two app
containers sharing the database and the Redis broadcast. An update posted through one
reaches a reader streaming from the other. Each container runs as a non-root user with
a health check that turns healthy. The image's size and the start time are printed (the
closing note of issue 17 quotes them).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import (
    REDIS_URL,
    fresh_postgres_database,
    redis_namespace_url,
    require_postgres,
    require_redis,
    skip_unless_ci,
)
from tests.topology import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "liveblog-base:bookworm"
IMAGE = "liveblog:test"
WHEELS = ROOT / ".cache" / "docker-wheels"
SECRET = "docker-test-secret-key-not-for-production-use"


def docker(*args: str, check: bool = True, timeout: float = 600, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=stdin,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def require_docker() -> None:
    if shutil.which("docker") is None:
        skip_unless_ci("docker not found (Debian package docker.io)")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        skip_unless_ci("no Docker engine answers (start dockerd)")


def ensure_base_image() -> None:
    """Debian bookworm with python3 and venv, made here (no registry to pull from)."""
    if docker("image", "inspect", BASE_IMAGE, check=False, timeout=30):
        return
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        skip_unless_ci("debootstrap not found (Debian package debootstrap)")
    rootfs = ROOT / ".cache" / "docker-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout, check=True)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)


def ensure_wheels() -> None:
    """Every package the image installs, as wheels built by the host's pip."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    pip = [str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "python"), "-m"]
    if not Path(pip[0]).exists():
        pip = ["python3", "-m"]
    subprocess.run(
        [*pip, "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELS), f"{ROOT}[postgres,redis]"],
        check=True,
        timeout=900,
    )
    # The project's own build backend, for the image's `pip install .`; and what the
    # base's Python (Debian's 3.11.2) needs beyond the host's (redis wants async-timeout
    # before 3.11.3).
    subprocess.run(
        [
            *pip,
            "pip",
            "download",
            "--quiet",
            "--dest",
            str(WHEELS),
            "hatchling",
            "async-timeout>=4.0.3",
        ],
        check=True,
        timeout=900,
    )
    for own in WHEELS.glob("liveblog-*.whl"):
        own.unlink()  # the image builds the project from its source, as users do


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def image() -> str:
    require_docker()
    ensure_base_image()
    ensure_wheels()
    with serving(WHEELS) as links:
        started = time.monotonic()
        docker(
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "--build-arg",
            "PIP_NO_INDEX=1",
            "--build-arg",
            f"PIP_FIND_LINKS={links}",
            "--tag",
            IMAGE,
            str(ROOT),
            timeout=900,
        )
        print(f"image built in {time.monotonic() - started:.1f} s")
    size = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE))
    print(f"image size: {size / 1e6:.1f} MB")
    return IMAGE


@pytest.fixture
def services() -> Iterator[dict[str, str]]:
    require_postgres()
    require_redis()
    with fresh_postgres_database() as name:
        yield {
            "LIVEBLOG_DATABASE_URL": name,  # already a URL
            "LIVEBLOG_BROADCAST_URL": redis_namespace_url(REDIS_URL),
            "LIVEBLOG_SECRET_KEY": SECRET,
        }


def run(image: str, env: dict[str, str], *command: str, detach: bool = False) -> str:
    flags = [f"--env={name}={value}" for name, value in env.items()]
    mode = ["--detach"] if detach else ["--rm"]
    return docker("run", *mode, "--network", "host", *flags, image, *command)


def wait_healthy(container: str, deadline: float) -> None:
    while True:
        state = json.loads(docker("inspect", "--format", "{{json .State.Health}}", container))
        if state and state["Status"] == "healthy":
            return
        if time.monotonic() > deadline:
            logs = docker("logs", container, check=False)
            raise AssertionError(f"{container} not healthy: {state}\n{logs}")
        time.sleep(0.2)


def test_the_image_migrates_serves_and_streams_as_compose_runs_it(
    image: str, services: dict[str, str]
) -> None:
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image))
    assert config["User"] == "liveblog"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    # The compose file's one-shot migration service.
    assert run(image, services, "liveblog", "db", "upgrade").endswith("-> current")
    assert run(image, services, "liveblog", "db", "status") == "schema: current"
    ports = [free_port(), free_port()]
    containers: list[str] = []
    try:
        started = time.monotonic()
        for port in ports:
            env = {**services, "PORT": str(port)}
            containers.append(
                docker(
                    "run",
                    "--detach",
                    "--network",
                    "host",
                    # The image's own check, asked every second here (10 s in the image).
                    "--health-interval=1s",
                    *[f"--env={name}={value}" for name, value in env.items()],
                    image,
                )
            )
        for container in containers:
            wait_healthy(container, started + 60)
        ready = time.monotonic() - started
        print(f"two app containers healthy {ready:.1f} s after docker run")
        for container in containers:
            # Not root, in the container as the image says.
            assert docker("exec", container, "id", "-u") != "0"
            assert docker("exec", container, "id", "-un") == "liveblog"
        first, second = (f"http://127.0.0.1:{port}" for port in ports)
        docker("exec", "--interactive", containers[0], "liveblog", "createuser", "ada",
               "--role", "admin", stdin="correct horse battery staple\n")  # fmt: skip
        token = docker("exec", containers[0], "liveblog", "token", "ada").split()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers, timeout=10) as api:
            made = api.post(
                f"{first}/api/stories", json={"title": "Storm", "slug": "storm", "status": "live"}
            )
            assert made.status_code == 201, made.text
            with (
                httpx.Client(timeout=10) as reader,
                reader.stream("GET", f"{second}/stories/storm/events") as stream,
            ):
                assert stream.status_code == 200
                lines = stream.iter_lines()
                assert next(lines).startswith("retry:")
                posted = api.post(
                    f"{first}/api/stories/storm/updates", json={"body": "Through the image"}
                )
                assert posted.status_code == 201, posted.text
                for line in lines:
                    if line.startswith("data:") and "Through the image" in line:
                        break
    finally:
        for container in containers:
            docker("rm", "--force", container, check=False)
