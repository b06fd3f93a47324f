"""Debian's Pushpin (+ its own zurl) in front of ``liveblog serve`` in GRIP mode, for the
bench's "pushpin" scenario.

The configuration is tests/pushpin.py's (Debian's internal.conf with every socket in a
run directory of our own, zurl allowed to reach 127.*), with one change: the bench holds
10,000 readers, and that config allows 1,000 client connections, so ``client_maxconn``
is set back to Debian's packaged default, 50,000. Everything else (``message_rate`` 2,500
messages a second included) is as packaged.

What Pushpin holds per reader is measured over all of its processes: condure (the
client connections), pushpin-proxy, pushpin-handler (the subscriptions) and zurl (its
requests to the origin), found as the runner's children plus zurl.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from bench.client import raise_open_files_limit
from bench.servers import OPEN_FILES, Proc, _children, free_port, wait_for_children
from tests.pushpin import SIGNATURE_KEY, pushpin_available, pushpin_config, zurl_config
from tests.topology import wait_for_port

__all__ = ["PushpinRun", "pushpin_available"]

CLIENT_MAXCONN = 50_000  # Debian's /etc/pushpin/pushpin.conf
SERVICES = 3  # condure, pushpin-proxy, pushpin-handler
# Pushpin's handler sends each published item to each subscriber as one action of a rate
# limiter: at most ``message_rate`` a second, at most ``message_hwm`` waiting (more are
# dropped, and the readers they were for recover from the origin). Packaged: 2,500 and
# 25,000, so one update to 10,000 readers takes at least 4 s to leave. The bench sets
# both from the readers (``run_pushpin``); docs/scaling.md says to do the same.
PACKAGED = {"message_rate": 2500, "message_hwm": 25000}


def _raise_limit_in_child() -> None:
    raise_open_files_limit(OPEN_FILES)


class PushpinRun:
    """Pushpin and its zurl on free ports, routing every request to ``origin_port``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.port = free_port()
        self.publish_port = free_port()
        self.log_level: int | None = None  # 3: debug, to see what Pushpin does
        self.message_rate = PACKAGED["message_rate"]
        self.message_hwm = PACKAGED["message_hwm"]

    @property
    def grip_url(self) -> str:
        """What liveblog's ``LIVEBLOG_GRIP_URL`` is set to (``key`` checks Grip-Sig)."""
        return f"http://127.0.0.1:{self.publish_port}?key={SIGNATURE_KEY}"

    def start(self, origin_port: int) -> Proc:
        run_dir = self.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "routes").write_text(f"* 127.0.0.1:{origin_port}\n")
        (run_dir / "zurl.conf").write_text(zurl_config(run_dir))
        config = pushpin_config(run_dir, http_port=self.port, publish_port=self.publish_port)
        if "client_maxconn=1000\n" not in config:
            raise RuntimeError("tests/pushpin.py's config changed: check client_maxconn")
        config = config.replace("client_maxconn=1000\n", f"client_maxconn={CLIENT_MAXCONN}\n")
        for name, value in (("message_rate", self.message_rate), ("message_hwm", self.message_hwm)):
            packaged = f"{name}={PACKAGED[name]}\n"
            if packaged not in config:
                raise RuntimeError(f"tests/pushpin.py's config changed: check {name}")
            config = config.replace(packaged, f"{name}={value}\n")
        if self.log_level is not None:
            config = config.replace("log_level=2\n", f"log_level={self.log_level}\n")
        (run_dir / "pushpin.conf").write_text(config)
        with (run_dir / "zurl.log").open("ab") as out:
            zurl = subprocess.Popen(
                ["zurl", f"--config={run_dir / 'zurl.conf'}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_raise_limit_in_child,
            )
        log = run_dir / "pushpin.log"
        with log.open("ab") as out:
            runner = subprocess.Popen(
                ["pushpin", f"--config={run_dir / 'pushpin.conf'}", "--merge-output"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_raise_limit_in_child,
            )
        try:
            wait_for_port(self.port, runner, "pushpin", log)
            wait_for_port(self.publish_port, runner, "pushpin (publish)", log)
            services = wait_for_children(lambda: _children(runner.pid), SERVICES, "pushpin")
            time.sleep(0.3)  # the proxy's sockets to the handler and zurl connect
        except BaseException:
            for process in (runner, zurl):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
            raise
        return Proc("pushpin", runner, self.port, [*services, zurl.pid], also=[zurl])

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.run_dir.glob("*.log"))
        )
