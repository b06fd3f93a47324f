# The liveblog app image: used by docker-compose.yml for the app replicas and for the
# one-shot migration service. Any LIVEBLOG_* variable configures it (see README.md).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY liveblog ./liveblog
COPY templates ./templates
COPY static ./static
# Both broadcast backends' client libraries: the URL picks one at run time.
RUN pip install '.[postgres,redis]' && rm -rf /src

RUN useradd --system --create-home --home-dir /data liveblog
USER liveblog
WORKDIR /data

# The secret key (shared by every replica) and the database come from the environment.
# Behind nginx, trust its X-Forwarded-For/-Proto (uvicorn reads FORWARDED_ALLOW_IPS).
ENV LIVEBLOG_DATA_DIR=/data \
    FORWARDED_ALLOW_IPS=*

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["liveblog", "serve", "--host", "0.0.0.0", "--port", "8000"]
