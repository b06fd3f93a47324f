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
import hashlib
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
    # (Asked for a missing image, `docker image inspect` prints "[]" and fails.)
    found = subprocess.run(
        ["docker", "image", "inspect", BASE_IMAGE], capture_output=True, timeout=30, check=False
    )
    if found.returncode == 0:
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
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout, check=True)
    assert tar.returncode == 0, "tar of the base's root file system failed"
    shutil.rmtree(rootfs, ignore_errors=True)


def _pip() -> list[str]:
    pip = [str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "python"), "-m"]
    return pip if Path(pip[0]).exists() else ["python3", "-m"]


# What the wheelhouse is built from, besides pyproject.toml: the requirements
# (the project with both broadcast backends' extras); the project's own build backend, for
# the image's `pip install .`; and what the base's Python (Debian's 3.11.2) needs beyond
# the host's (redis wants async-timeout before 3.11.3).
EXTRAS = "[postgres,redis]"
DOWNLOADS = ("hatchling", "async-timeout>=4.0.3")


def wheels_key(pip: list[str]) -> str:
    """A hash of what decides the wheelhouse's contents: pyproject.toml (the project's
    dependencies), the requirements above and the Python that resolves them. The package
    sources are not in it: the project's own wheel is left out of the wheelhouse (the
    image builds the project from its source)."""
    python = subprocess.run(
        [pip[0], "-c", "import sys; print(sys.version)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    digest = hashlib.sha256()
    for part in ((ROOT / "pyproject.toml").read_bytes(), EXTRAS, *DOWNLOADS, python):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def ensure_wheels() -> None:
    """Every package the image installs, as wheels built by the host's pip; rebuilt only
    when ``wheels_key`` changed (or a wheel of the last build is missing)."""
    pip = _pip()
    key = wheels_key(pip)
    stamp = WHEELS / "key.json"
    with contextlib.suppress(OSError, ValueError):
        built = json.loads(stamp.read_text())
        if built["key"] == key and all((WHEELS / name).is_file() for name in built["files"]):
            return
    shutil.rmtree(WHEELS, ignore_errors=True)  # nothing of an older build is left in it
    WHEELS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*pip, "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELS), f"{ROOT}{EXTRAS}"],
        check=True,
        timeout=900,
    )
    subprocess.run(
        [*pip, "pip", "download", "--quiet", "--dest", str(WHEELS), *DOWNLOADS],
        check=True,
        timeout=900,
    )
    for own in WHEELS.glob("liveblog-*.whl"):
        own.unlink()  # the image builds the project from its source, as users do
    files = sorted(path.name for path in WHEELS.iterdir())
    stamp.write_text(json.dumps({"key": key, "files": files}))


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
