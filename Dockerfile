# syntax=docker/dockerfile:1
# One image for the API, the worker and the trainer; docker-compose.yml gives each its command.

FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Every requirement ships as a wheel, so the builder needs no compiler either.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODEL_STORE_DIR=/models

# A fixed uid, so that files the app writes into volumes have a predictable owner. An empty named
# volume mounted at /models takes this folder's owner, so model-init can write the model into it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
    && mkdir /models \
    && chown app:app /models

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The source stays owned by root: the app user can read it, never change it.
COPY settings.py tracing.py gunicorn.conf.py ./
COPY api/ api/
COPY jobs/ jobs/
COPY worker/ worker/
COPY training/ training/
COPY model_store/ model_store/
COPY stack/ stack/
RUN python -m compileall -q /app

USER app

EXPOSE 1313

# slim has no curl; urlopen raises on anything but a 2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:1313/health', timeout=4)"]

# stack.commands.api_command(): the server's settings are in gunicorn.conf.py.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "api:create_app()"]
