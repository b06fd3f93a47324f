# The liveblog app image: used by docker-compose.yml for the app replicas and for the
# one-shot migration service. Any LIVEBLOG_* variable configures it (see README.md and
# docs/operations.md, "The Docker image").
#
# BASE_IMAGE: any Debian-like image with python3 (3.11 or newer) and its venv module.
# The default is the standard public one. Where no registry can be reached, make one
# locally (tests/test_docker.py does: debootstrap of Debian bookworm with python3-venv,
# then `docker import`) and pass --build-arg BASE_IMAGE=that.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# pip reads these when given as build arguments: an offline build installs from a
# directory of wheels (PIP_NO_INDEX=1 PIP_FIND_LINKS=http://...); otherwise PyPI.
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/liveblog/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY liveblog ./liveblog
COPY templates ./templates
COPY static ./static
# A venv of its own (the base's Python stays untouched), with both broadcast backends'
# client libraries: the URL picks one at run time.
RUN python3 -m venv /opt/liveblog \
    && pip install '.[postgres,redis]' \
    && rm -rf /src

# Never root: the service and its data directory belong to a system user.
RUN useradd --system --create-home --home-dir /data liveblog
USER liveblog
WORKDIR /data

# The secret key (shared by every replica) and the database come from the environment.
# Behind nginx, trust its X-Forwarded-For/-Proto (uvicorn reads FORWARDED_ALLOW_IPS).
# PORT: where it listens (and where the health check asks), 8000 unless changed.
ENV LIVEBLOG_DATA_DIR=/data \
    FORWARDED_ALLOW_IPS=* \
    PORT=8000

EXPOSE 8000
# /healthz answers 200 only while the database and the broadcast answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=4)"]
# exec: the server is the container's main process and gets its stop signal.
CMD ["sh", "-c", "exec liveblog serve --host 0.0.0.0 --port \"$PORT\""]
