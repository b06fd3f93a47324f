"""Fan-out benchmark: liveblog against nginx + nchan, the same load client for both.

``python -m bench`` runs everything and prints the results table; ``python -m bench --help``
lists the knobs. ``docs/performance.md`` explains the figures and records a run.
"""
