# Postroom: HTTP on 8000, SMTP on 2525, data (SQLite + blobs) in the /data volume.
# Run with -e POSTROOM_HTTP_PUBLIC_BASE_URL=https://your.host (object URLs are built from it) and
# -e POSTROOM_SMTP_DOMAIN=your.mail.domain (inbox addresses end with it).
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin postroom \
 && mkdir -p /data /etc/postroom \
 && chown postroom:postroom /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY config/postroom.toml /etc/postroom/postroom.toml
RUN pip install --no-cache-dir . && rm -rf /root/.cache

ENV POSTROOM_CONFIG=/etc/postroom/postroom.toml \
    POSTROOM_STORAGE_DATA_DIR=/data \
    POSTROOM_HTTP_HOST=0.0.0.0 \
    POSTROOM_SMTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1

USER postroom
VOLUME ["/data"]
EXPOSE 8000 2525
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health').status==200 else 1)"
CMD ["postroom", "serve"]
