"""Messages waiting in a broker queue, read back as the calls they stand for."""

from __future__ import annotations

from backoffice.celery import app


def take_calls(queue: str) -> list[tuple[str, list, dict]]:
    """Every message waiting in ``queue`` as (task name, args, kwargs), removed from it."""
    taken = []
    with app.connection_for_read() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(block=False)
                except simple.Empty:
                    return taken
                args, kwargs, _embed = message.payload
                taken.append((message.headers["task"], args, kwargs))
                message.ack()
        finally:
            simple.close()
