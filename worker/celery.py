"""Entry point that `celery -A worker` finds: the app, built from the environment."""

from settings import Settings
from worker.celery_app import make_celery

app = make_celery(Settings.from_env())
