"""Live changes: the change log followed by subscribers (docs/changes.md).

``hub.py`` keeps, per worker process and event loop, the recent changes of the spaces someone
follows, read once per wake-up for all of them; ``service.py`` wakes it (PostgreSQL: LISTEN on
one connection, ``storage/notifications.py``; SQLite: a timer) and is what the HTTP layer
calls: open a feed, the next batch after a cursor, a write to number, retention;
``sequencer.py`` numbers this worker's writes after they commit (PostgreSQL). Access rules are
the HTTP layer's business.
"""
