"""``liveblog.gc_tuning``: memory a burst freed goes back to the system.

Run in a fresh interpreter, so the heap measured is that script's alone.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from liveblog.gc_tuning import THRESHOLDS, return_freed_memory

def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

gc.freeze()
gc.set_threshold(*THRESHOLDS)
start = rss_mib()
burst = [bytes(2000 + i % 5000) for i in range(60_000)]  # ~270 MB of heap, not mmap
survivors = [bytes(100) for _ in range(0, 60_000, 50)]  # scattered through it
peak = rss_mib()
del burst
freed = rss_mib()
return_freed_memory()
print(start, peak, freed, rss_mib())
"""


def test_memory_freed_after_a_burst_is_returned_to_the_system() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    start, peak, freed, after = map(int, result.stdout.split())
    assert peak - start > 200, result.stdout
    # Freed by Python, kept by malloc: the process stays at its peak ...
    assert freed > start + 150, result.stdout
    # ... until it is handed back.
    assert after < start + 30, result.stdout
