"""nginx (Debian's package) in front of several `queue-server serve` processes, as production
runs them: deploy/nginx's own files, an upstream of the processes, and nginx reaching them from
PROXY_ADDRESS, the one address the processes trust (`RIGI_TRUSTED_PROXIES`).

Standard library and httpx only, so a benchmark can use it without pytest (as
tests/redis_server.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
PROXY_ADDRESS = "127.0.0.2"  # nginx reaches the servers from here: the one trusted proxy
START_TIMEOUT_S = 90  # a fresh database migrates first; a shared machine at load 15 is slow
STOP_TIMEOUT_S = 15


class NginxMissing(RuntimeError):
    """Debian's nginx is not installed (scripts/system-deps.sh installs it)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found is None:
        raise NginxMissing("nginx not installed (scripts/system-deps.sh installs Debian's nginx)")
    return found


def nginx_conf(folder: Path, port: int, upstream_ports: list[int], connections: int) -> str:
    """The test's whole nginx.conf: deploy/nginx's two include files, unchanged, around an
    upstream of `upstream_ports` (round robin, keep-alive as deploy/nginx/rigi.conf)."""
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstream_ports)
    return f"""
daemon off;
worker_processes 1;
worker_rlimit_nofile {2 * connections + 64};
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {DEPLOY / "rigi-http.conf"};
    upstream rigi {{
{servers}
        keepalive 32;
        keepalive_timeout 60s;
    }}
    server {{
        listen 127.0.0.1:{port};
        access_log {folder}/access.log rigi;
        proxy_bind {PROXY_ADDRESS};
        include {DEPLOY / "rigi-locations.conf"};
    }}
}}
"""


@contextlib.contextmanager
def nginx_in_front(
    folder: Path, upstream_ports: list[int], connections: int = 512
) -> Iterator[str]:
    """nginx on a free loopback port in front of `upstream_ports`; yields its URL.
    `connections` bounds nginx's connections (a proxied WebSocket holds two)."""
    binary = nginx_binary()
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(nginx_conf(folder, port, upstream_ports, connections))
    checked = subprocess.run(
        [binary, "-t", "-p", str(folder), "-c", str(conf)], capture_output=True, text=True
    )
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused its configuration: {checked.stderr}")
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(conf)], stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_answers(url + "/healthz", process)
        yield url
    finally:
        _stop(process)


@dataclass
class Processes:
    """Server processes on loopback ports."""

    ports: list[int]
    processes: list[subprocess.Popen[bytes]]

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]


@contextlib.contextmanager
def servers(env: dict[str, str], count: int) -> Iterator[Processes]:
    """`count` `queue-server serve` processes with `env` (one database and bus for all), each
    ready (`/readyz`) before this yields; stopped afterwards."""
    command = [sys.executable, "-m", "queue_server", "serve", "--host", "127.0.0.1"]
    ports = [free_port() for _ in range(count)]
    processes = [
        subprocess.Popen([*command, "--port", str(port)], env=env, stdin=subprocess.DEVNULL)
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            _wait_answers(f"http://127.0.0.1:{port}/readyz", process)
        yield Processes(ports, processes)
    finally:
        for process in processes:
            _stop(process)


def _wait_answers(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {START_TIMEOUT_S} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")
