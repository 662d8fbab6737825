"""gunicorn configuration: uvicorn workers running ``datastore.asgi:application``.

    DATASTORE_BLUEPRINT=/srv/api.yaml \
    DATASTORE_DATABASE_URL=postgresql+psycopg://app@db/datastore \
    gunicorn -c deploy/gunicorn.conf.py

Run ``datastore migrate`` once before starting (or keep DATASTORE_MIGRATE=true: workers then
migrate under a PostgreSQL advisory lock, one at a time).
"""

import multiprocessing
import os

wsgi_app = "datastore.asgi:application()"
worker_class = "uvicorn.workers.UvicornWorker"
bind = os.environ.get("DATASTORE_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("DATASTORE_WORKERS", 0)) or min(multiprocessing.cpu_count() * 2, 8)
graceful_timeout = 30
timeout = 60
keepalive = 5
# No gunicorn/uvicorn access log: the app writes one JSON line per request to the
# ``datastore.access`` logger (DATASTORE_LOG_LEVEL=info); a second log would double the cost.
accesslog = None
