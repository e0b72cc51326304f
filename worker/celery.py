"""Entry point that `celery -A worker` finds: the app, built from the environment."""

from jobs.broker import make_celery
from settings import Settings

app = make_celery(Settings.from_env(), include=["worker.tasks", "worker.webhooks"])
# Messages that cannot become a task are dead-lettered, never fatal (worker/consumer.py).
app.conf.worker_consumer = "worker.consumer:Consumer"
