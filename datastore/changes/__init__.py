"""Live changes: the change log followed by subscribers (docs/changes.md).

``hub.py`` keeps, per worker process and event loop, the recent changes of the spaces someone
follows, read once per wake-up for all of them; ``wakeups.py`` wakes it (PostgreSQL: LISTEN on
one connection; SQLite: a timer); ``service.py`` is what the HTTP layer calls: open a feed,
the next batch after a cursor, retention. Access rules are the HTTP layer's business.
"""
