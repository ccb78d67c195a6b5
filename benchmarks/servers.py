"""Server launcher for the benchmarks: `python -m benchmarks.servers rigi|bare --port P`.

Runs uvicorn programmatically with an app factory, so permessage-deflate can be chosen (the
`queue-server serve` command always turns it off), and raises the open-files limit first.
"""

from __future__ import annotations

import argparse

import uvicorn

from benchmarks._support import raise_open_files

FACTORIES = {
    "rigi": "queue_server.app:create_app",
    "rigi-without-facts": "benchmarks.facts_cost_bench:app_without_facts",
    "bare": "benchmarks.bare_app:create_app",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=sorted(FACTORIES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deflate", action="store_true", help="allow permessage-deflate")
    args = parser.parse_args()
    raise_open_files()
    uvicorn.run(
        FACTORIES[args.app],
        factory=True,
        host=args.host,
        port=args.port,
        log_level="warning",
        ws_per_message_deflate=args.deflate,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
