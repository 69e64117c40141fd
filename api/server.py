"""Serve the API: uvicorn with httptools and the limits it lacks (api/http_limits.py), and the
metrics on a port of their own if API_METRICS_PORT is set.

    python -m api.server [--host 127.0.0.1] [--port 8000] [--workers N] [--log-level info] [--no-access-log]

bin/run (through cli/serve_api.py), docker-compose.yml, the API image, the tests and the benchmarks
all start the API this way, so all of them run with the same limits. It is uvicorn.run with one
socket more: the metrics port is served by the same processes as the API port, so /metrics still
adds up every process's counts, while only the API port needs to be published.
"""

import argparse
import logging
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from shared.settings import get_settings

APP = "api.main:app"
# By import string: each worker process imports it (with the app's metrics), the supervisor not.
PROTOCOL = "api.http_limits:LimitedHttpTools"
STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start

log = logging.getLogger("uvicorn.error")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)


def config(args: argparse.Namespace) -> uvicorn.Config:
    # uvloop sets TCP_NODELAY on accepted sockets: without it keep-alive answers wait for Nagle.
    return uvicorn.Config(APP, host=args.host, port=args.port, workers=args.workers, loop="uvloop",
                          http=PROTOCOL, log_level=args.log_level, access_log=args.access_log)


def metrics_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        log.error("metrics port: %s", exc)
        sys.exit(STARTUP_FAILURE)
    log.info("Metrics on http://%s:%d/metrics", host, port)
    return sock


def main(argv: list[str]) -> int:
    args = parse(argv)
    server_config = config(args)
    sockets = [server_config.bind_socket()]
    metrics_port = get_settings().api_metrics_port
    if metrics_port:
        sockets.append(metrics_socket(args.host, metrics_port))
    server = uvicorn.Server(server_config)
    try:
        if server_config.workers > 1:
            Multiprocess(server_config, sockets=sockets).run()
        else:
            server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    if server_config.workers == 1 and not server.started:
        return STARTUP_FAILURE
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
