"""Debian's Pushpin in front of ``liveblog serve`` processes, run by a test: its own
config, run directory and routes file, on free ports, and its own zurl (Debian's
Pushpin reaches origins through zurl, whose packaged config refuses ``127.*``).

Used by tests/test_pushpin.py. Every process is owned by the test that started it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from liveblog.settings import Settings
from tests.services import require_tool
from tests.topology import (
    Worker,
    free_port,
    stop_process,
    wait_for_port,
    worker_environment,
)

INTERNAL_CONF = Path("/usr/lib/pushpin/internal.conf")
SIGNATURE_KEY = "pushpin-test-signature-key-of-32-bytes-or-more"


def zurl_config(run_dir: Path) -> str:
    return "\n".join(
        [
            "[General]",
            "instance_id=",
            f"in_spec=ipc://{run_dir}/zurl-in",
            f"in_stream_spec=ipc://{run_dir}/zurl-in-stream",
            f"out_spec=ipc://{run_dir}/zurl-out",
            f"in_req_spec=ipc://{run_dir}/zurl-req",
            "defpolicy=allow",
            "allow=",
            "deny=",  # the packaged config denies 127.*: our origins are there
            "max_open_requests=2000",
            "buffer_size=200000",
            "timeout=600",
            "in_hwm=1000",
            "out_hwm=1000",
            "",
        ]
    )


def pushpin_config(run_dir: Path, *, http_port: int, publish_port: int) -> str:
    """A complete config: Debian's internal.conf (with zurl's sockets moved into our
    run directory) and the sections of /etc/pushpin/pushpin.conf we need."""
    internal = INTERNAL_CONF.read_text().replace("ipc:///var/run/zurl/", f"ipc://{run_dir}/")
    return "\n".join(
        [
            "[global]",
            f"rundir={run_dir}",
            "ipc_prefix=pushpin-",
            "port_offset=0",
            "stats_connection_ttl=120",
            "",
            "[runner]",
            "services=condure,pushpin-proxy,pushpin-handler",
            f"http_port=127.0.0.1:{http_port}",
            f"logdir={run_dir}",
            "log_level=2",
            "client_buffer_size=8192",
            "client_maxconn=1000",
            "condure_bin=condure",
            "",
            internal,
            "",
            "[proxy]",  # a second [proxy] section: Qt's settings merge them
            f"routesfile={run_dir / 'routes'}",
            "debug=false",
            "auto_cross_origin=false",
            "accept_x_forwarded_protocol=false",
            "set_x_forwarded_protocol=proto-only",
            "x_forwarded_for=",
            "x_forwarded_for_trusted=",
            "orig_headers_need_mark=",
            "accept_pushpin_route=false",
            "log_from=false",
            "log_user_agent=false",
            "sig_iss=pushpin",
            f"sig_key={SIGNATURE_KEY}",
            "upstream_key=",
            "updates_check=off",
            "",
            "[handler]",
            f"push_in_spec=ipc://{run_dir}/push-in",
            f"push_in_sub_specs=ipc://{run_dir}/push-in-sub",
            "push_in_sub_connect=false",
            "push_in_http_addr=127.0.0.1",
            f"push_in_http_port={publish_port}",
            "push_in_http_max_headers_size=10000",
            "push_in_http_max_body_size=1000000",
            f"stats_spec=ipc://{run_dir}/stats",
            f"command_spec=ipc://{run_dir}/command",
            "message_rate=2500",
            "message_hwm=25000",
            "message_wait=5000",
            "id_cache_ttl=60",
            "connection_subscription_max=20",
            "subscription_linger=60",
            "stats_subscription_ttl=60",
            "stats_report_interval=10",
            "stats_format=tnetstring",
            "",
        ]
    )


@dataclass
class Pushpin:
    """Pushpin and its zurl, restartable on the same ports."""

    run_dir: Path
    origins: list[Worker]
    port: int = field(default_factory=free_port)
    publish_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    zurl: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grip_url(self) -> str:
        """What liveblog's ``LIVEBLOG_GRIP_URL`` is set to (``key`` checks Grip-Sig)."""
        return f"http://127.0.0.1:{self.publish_port}?key={SIGNATURE_KEY}"

    @property
    def stats_url(self) -> str:
        """What ``LIVEBLOG_GRIP_STATS_URL`` is set to: Pushpin's stats socket."""
        return f"ipc://{self.run_dir}/stats"

    def write_routes(self, origins: list[Worker]) -> None:
        self.origins = origins
        self.run_dir.mkdir(parents=True, exist_ok=True)
        targets = " ".join(f"127.0.0.1:{worker.port}" for worker in origins)
        (self.run_dir / "routes").write_text(f"* {targets}\n")

    def start(self) -> None:
        pushpin = require_tool("pushpin")
        zurl = require_tool("zurl")
        require_tool("condure")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob("*"):  # ipc sockets and pid files of a last run
            if stale.is_socket() or stale.suffix == ".pid":
                stale.unlink()
        if not (self.run_dir / "routes").exists():
            self.write_routes(self.origins)
        (self.run_dir / "zurl.conf").write_text(zurl_config(self.run_dir))
        config = self.run_dir / "pushpin.conf"
        config.write_text(
            pushpin_config(self.run_dir, http_port=self.port, publish_port=self.publish_port)
        )
        zurl_log = self.run_dir / "zurl.log"
        with zurl_log.open("ab") as out:
            self.zurl = subprocess.Popen(
                [zurl, f"--config={self.run_dir / 'zurl.conf'}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log = self.run_dir / "pushpin.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [pushpin, f"--config={config}", "--merge-output"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, self.process, "pushpin", log)
            wait_for_port(self.publish_port, self.process, "pushpin (publish)", log)
            time.sleep(0.3)  # the proxy's sockets to the handler and zurl connect
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)
            self.process = None
        if self.zurl is not None:
            stop_process(self.zurl, signal.SIGTERM)
            self.zurl = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.run_dir.glob("*.log"))
        )


def pushpin_available() -> bool:
    return all(shutil.which(tool) for tool in ("pushpin", "zurl", "condure"))


@contextlib.contextmanager
def running_pushpin(run_dir: Path, origins: list[Worker]) -> Iterator[Pushpin]:
    proxy = Pushpin(run_dir, origins)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def start_worker(
    settings: Settings, name: str, *, port: int | None = None, env: dict[str, str] | None = None
) -> Worker:
    """One ``liveblog serve`` on ``port`` (a restarted worker keeps its port: Pushpin's
    routes file names it)."""
    port = free_port() if port is None else port
    log = settings.data_dir / f"worker-{name}.log"
    command = [sys.executable, "-m", "liveblog.cli", "serve", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=settings.data_dir,
            env=worker_environment(settings, env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, f"worker {name}", log)
    except BaseException:
        stop_process(process)
        raise
    return Worker(port, process, name=name, log=log)
