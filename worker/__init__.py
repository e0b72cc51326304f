"""Celery workers: `celery --app worker worker` scores chunks and runs the watchdog thread."""
