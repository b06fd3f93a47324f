"""``--profile DIR``: where liveblog's time goes, sampled with py-spy while the bench runs.

py-spy (``pip install -e '.[profile]'``) samples the server's Python stacks from outside,
pausing it for each sample (consistent stacks, a few per cent slower). Each phase
(connecting the readers, the idle updates) gets the raw samples in ``DIR/<phase>.txt``
(load them into speedscope or ``flamegraph.pl``) and a summary, ``DIR/<phase>-top.txt``:
the functions holding the most samples themselves, and the frames on the stack the
longest.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

RATE = 250  # samples per second


class Profiler:
    def __init__(self, directory: Path) -> None:
        # On PATH, or beside this Python (a virtualenv that was not activated).
        found = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if found is None:
            raise RuntimeError("--profile needs py-spy: pip install -e '.[profile]'")
        self.py_spy = found
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._running: tuple[subprocess.Popen[bytes], str] | None = None

    def start(self, pid: int, phase: str) -> None:
        self.stop()
        out = self.directory / f"{phase}.txt"
        command = [
            self.py_spy, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
            "--output", str(out),
        ]  # fmt: skip
        popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the phase begins
        self._running = (popen, phase)

    def stop(self) -> None:
        if self._running is None:
            return
        popen, phase = self._running
        self._running = None
        popen.send_signal(signal.SIGINT)
        popen.wait(timeout=30)
        raw = self.directory / f"{phase}.txt"
        if raw.exists():
            summary = summarise(raw)
            (self.directory / f"{phase}-top.txt").write_text(summary)
            print(f"  profile of {phase}: {raw}\n" + indent(summary, 20))


def summarise(raw: Path, lines: int = 25) -> str:
    """The top frames of py-spy's raw (collapsed) output, by own and by total samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if any("Thread._bootstrap" in frame for frame in frames):
            continue  # the database's worker threads; the event loop is what we follow
        count = int(count_text)
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return "no samples\n"
    out = [f"{samples} samples of the event loop thread", "", "own  (the function itself)"]
    out += [f"{100 * n / samples:5.1f}%  {frame}" for frame, n in own.most_common(lines)]
    # The trunk every sample shares (runpy, click, uvicorn's main, the loop) says nothing.
    branches = [(frame, n) for frame, n in total.most_common() if n < 0.8 * samples]
    out += ["", "total (on the stack; the common trunk left out)"]
    out += [f"{100 * n / samples:5.1f}%  {frame}" for frame, n in branches[: lines * 2]]
    return "\n".join(out) + "\n"


def indent(text: str, count: int) -> str:
    return "\n".join("    " + line for line in text.splitlines()[: count + 3])
