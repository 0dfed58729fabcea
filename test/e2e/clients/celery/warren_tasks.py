# Celery application used by celery_roundtrip.py: a real worker process imports it (-A warren_tasks).
# The broker URL comes from WARREN_CELERY_BROKER; results come back over AMQP (rpc:// backend).
import os

from celery import Celery

app = Celery("warren_tasks", broker=os.environ["WARREN_CELERY_BROKER"], backend="rpc://")
app.conf.update(
    task_acks_late=True,  # ack after the task ran: a crash means redelivery, as production setups use
    worker_prefetch_multiplier=1,
    task_default_queue=os.environ.get("WARREN_CELERY_QUEUE", "celery"),
    broker_connection_retry_on_startup=False,
    worker_hijack_root_logger=False,
)


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, max_retries=3, default_retry_delay=0)
def flaky(self, fail_times):
    """Fails (and is retried through the broker) fail_times times, then returns its retry count."""
    if self.request.retries < fail_times:
        raise self.retry(countdown=0)
    return self.request.retries


@app.task
def boom():
    raise ValueError("expected failure")
