"""liveblog: a live-updates blog engine for breaking news."""

__version__ = "0.1.0"
