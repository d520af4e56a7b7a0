FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY faq ./faq
COPY handoff ./handoff
RUN pip install --no-cache-dir .

# config/ is the admin's room: mount your own over /app/config.
COPY config ./config
RUN useradd --create-home --uid 10001 relevo && mkdir -p /app/data && chown relevo /app/data
USER relevo

ENV RELEVO_SERVER_HOST=0.0.0.0 RELEVO_SERVER_PORT=8080
EXPOSE 8080
VOLUME ["/app/data"]
# On the port the container serves on (RELEVO_SERVER_PORT may be overridden at `docker run`). Docker
# only marks the container unhealthy: a restart needs autoheal or an orchestrator (see README).
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import os,sys,urllib.request; port=os.environ.get('RELEVO_SERVER_PORT') or '8080'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"
CMD ["relevo", "serve"]
