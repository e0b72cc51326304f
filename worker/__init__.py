"""Celery workers. `celery -A worker worker` scores chunks; `celery -A worker beat` runs the watchdog."""
