"""Entry point that `celery -A worker` finds: the app, built from the environment."""

from jobs.broker import make_celery
from settings import Settings

app = make_celery(Settings.from_env(), include=["worker.tasks"])
