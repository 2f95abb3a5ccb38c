"""The concurrency benchmark: ragsite (one uvicorn worker) against the ceiling and a sync baseline.

    python -m bench.run                 # the full sweep (make bench), about 16 minutes
    python -m bench.run --profile       # ... plus py-spy profiles of ragsite at 200 concurrent
    python -m bench.run --quick --out /tmp/x   # a handful of chats: the harness's smoke test

One fake OpenAI-compatible upstream (tests/fakes, 300 ms to the first token, then 40 chunks 25 ms
apart) serves everything. For each concurrency C:

* ceiling   the load generator straight at the fake upstream;
* async     ragsite on its embedded default (SQLite, FTS5 index, OPENAI_HOST=compatible), one
            uvicorn worker, POST /chat/stream through the whole pipeline; websocket runs hold many
            open sockets while some answer;
* sample    the sample apps' bare relay (bench/sample_app.py: FastAPI, the SDK's own stream), at
            C=200 and 500 right after ragsite: the reference of the CPU target;
* sync      the same Django project as a WSGI app (bench/sync_app.py) under gunicorn -w 4 sync.

Each server run starts a fresh server process (clean peaks), sends two warm-up chats, then the
load generator (bench/loadgen.py, its own process) runs the closed loop while bench/procmon.py
samples the server's CPU, RSS and threads. Results: JSON, a Markdown table and a PNG plot.
The options and plans are in bench/options.py, the order of runs in bench/sweep.py, the
processes in bench/harness.py.
"""

from __future__ import annotations

import sys

from bench.options import parse_args
from bench.processes import raise_nofile
from bench.sweep import Sweep


def main(argv=None) -> None:
    args = parse_args(argv)
    raise_nofile()
    sweep = Sweep(args)
    try:
        sweep.run()
    finally:
        sweep.close()
    if sweep.failures:
        sys.exit(f"{len(sweep.failures)} run(s) failed: see 'failures' in results.json")


if __name__ == "__main__":
    main()
