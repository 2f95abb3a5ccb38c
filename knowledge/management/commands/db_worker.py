"""django-tasks-db's worker, made to ride out database outages.

The stock command exits on the first OperationalError (a PostgreSQL restart, a pool timeout), and
a supervisor restarting it in a tight loop helps nobody. This one waits with exponential backoff
and carries on; the rows say what still needs indexing, so nothing is lost meanwhile.
"""

import logging
from datetime import timedelta

from django.db import close_old_connections, connections
from django_tasks_db.management.commands.db_worker import Command as StockCommand
from tenacity import Retrying, retry_if_exception, wait_exponential

from core import telemetry
from core.outage import is_outage
from knowledge.index_telemetry import observe_queue
from knowledge.stale import recover_stale_claims

log = logging.getLogger("knowledge.worker")


class Command(StockCommand):
    help = StockCommand.help + " Waits out database outages instead of exiting."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--stale-after",
            type=float,
            default=900.0,
            metavar="SECONDS",
            help="At start, tasks RUNNING longer than this are claims of a dead worker: they "
            "are failed and their documents synced again (default: %(default)s).",
        )

    def handle(self, *args, **options):
        if telemetry.configure():
            observe_queue()
        recovered = recover_stale_claims(timedelta(seconds=options.pop("stale_after")))
        if recovered:
            log.warning("requeued documents %s left behind by a dead worker", recovered)

        def before_sleep(state):
            log.warning(
                "database unavailable (%s); worker retrying in %.1f s",
                state.outcome.exception(),
                state.next_action.sleep,
            )
            for conn in connections.all(initialized_only=True):
                conn.close()

        retrying = Retrying(
            retry=retry_if_exception(is_outage),
            wait=wait_exponential(multiplier=0.5, max=30),
            before_sleep=before_sleep,
        )
        for attempt in retrying:
            with attempt:
                close_old_connections()
                super().handle(*args, **options)
