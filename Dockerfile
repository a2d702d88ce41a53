# Postroom: HTTP on 8000, SMTP on 2525, data (SQLite + blobs + spool) in the /data volume.
# Run with -e POSTROOM_HTTP_PUBLIC_BASE_URL=https://your.host (object URLs are built from it) and
# -e POSTROOM_SMTP_DOMAIN=your.mail.domain (inbox addresses end with it). compose.yaml runs two
# instances with PostgreSQL; docs/DEPLOY.md covers TLS, DNS, backups, upgrades and alerts.
#
# Stopping: SIGTERM drains (HTTP requests up to http.shutdown_timeout, 10 s; SMTP deliveries past
# DATA up to 30 s; running pipeline jobs 5 s); give the container 75 s before SIGKILL
# (`docker stop -t 75`, compose `stop_grace_period: 75s`) and run it with `--init`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin postroom \
 && mkdir -p /data /etc/postroom \
 && chown postroom:postroom /data

WORKDIR /build

# Dependencies first, from the lock file alone: this layer is rebuilt only when the lock changes,
# not on every change under src/.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY config/postroom.toml /etc/postroom/postroom.toml
COPY docker/healthcheck.py /usr/local/bin/postroom-healthcheck
COPY pyproject.toml README.md ./
COPY src ./src
# The package alone (its dependencies are all in the lock); `pip check` fails the build if the
# lock lacks one.
RUN pip install --no-deps . \
 && pip check \
 && cd / && rm -rf /build

WORKDIR /data

ENV POSTROOM_CONFIG=/etc/postroom/postroom.toml \
    POSTROOM_STORAGE_DATA_DIR=/data \
    POSTROOM_HTTP_HOST=0.0.0.0 \
    POSTROOM_SMTP_HOST=0.0.0.0

USER postroom
VOLUME ["/data"]
EXPOSE 8000 2525
STOPSIGNAL SIGTERM
# GET /api/v1/health on POSTROOM_HTTP_PORT (default 8000): 200 while the database answers.
# The start period covers the migrations `postroom serve` applies before it listens.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/postroom-healthcheck"]
CMD ["postroom", "serve"]
