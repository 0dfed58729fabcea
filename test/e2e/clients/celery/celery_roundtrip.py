# A real Celery worker (Debian's python3-celery, py-amqp transport) against a broker: starts the
# worker as a child process, sends tasks from this process and waits for their results over AMQP
# (rpc:// backend), pings the worker over its broadcast (pidbox) exchange, then stops the worker
# with SIGTERM (warm shutdown). Prints one JSON object with what it observed.
# Usage: /usr/bin/python3 celery_roundtrip.py PORT
import json
import os
import signal
import subprocess
import sys
import time
import uuid

port = int(sys.argv[1])
here = os.path.dirname(os.path.abspath(__file__))
os.environ["WARREN_CELERY_BROKER"] = f"amqp://guest:guest@127.0.0.1:{port}//"
os.environ["WARREN_CELERY_QUEUE"] = f"celery-{uuid.uuid4().hex[:8]}"
sys.path.insert(0, here)

from warren_tasks import add, app, boom, flaky  # noqa: E402

out = {}
worker = subprocess.Popen(
    [sys.executable, "-m", "celery", "-A", "warren_tasks", "worker", "--pool=solo", "--loglevel=INFO",
     "--hostname", f"warren-test-{os.getpid()}@localhost"],
    cwd=here, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
try:
    # ping over the pidbox fanout exchange until the worker answers (it needs a moment to start)
    deadline = time.monotonic() + 30
    replies = []
    while not replies and time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("worker exited early: " + worker.stdout.read()[-2000:])
        replies = app.control.ping(timeout=0.5)
    out["ping"] = [list(r.values())[0] for r in replies]

    out["add"] = add.delay(2, 3).get(timeout=20)
    out["many"] = [r.get(timeout=20) for r in [add.delay(i, i) for i in range(10)]]
    out["retried"] = flaky.delay(2).get(timeout=20)
    out["countdown"] = add.apply_async((40, 2), countdown=1).get(timeout=20)
    try:
        boom.delay().get(timeout=20)
        out["failure"] = "no error"
    except ValueError as e:
        out["failure"] = ["ValueError", str(e)]
    active = app.control.inspect(timeout=2).active_queues() or {}
    out["active_queues"] = sorted(q["name"] for queues in active.values() for q in queues)
finally:
    worker.send_signal(signal.SIGTERM)
    try:
        log, _ = worker.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        log, _ = worker.communicate()
    out["worker_exit"] = worker.returncode
    sys.stderr.write(log)  # the worker's log, for whoever reads a failing test
    bad = [line for line in log.splitlines() if "ERROR" in line and "expected failure" not in line and "boom" not in line]
    out["worker_errors"] = bad[:5]
    app.close()

out["active_queues"] = [q.replace(os.environ["WARREN_CELERY_QUEUE"], "QUEUE") for q in out.get("active_queues", [])]
print(json.dumps(out))
