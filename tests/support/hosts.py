"""Hosts on this machine: network namespaces joined by a switch, for the multi-host test.

    root namespace (the test, its clients) --veth-- [switch: a namespace with a bridge] --veth-- host
                                                                                     \\--veth-- host ...

Each host is a network namespace with a loopback and one interface, `eth0`, on 10.213.N.0/24; the
test's own namespace gets .254 on the same network, so it reaches every host directly and needs no
routing. The bridge lives in a namespace of its own, away from the machine's firewall (the root
namespace's bridged traffic may go through iptables). A host's link is its veth's switch end:
`cut` takes it down, as a pulled cable would; nothing on the host is told.

Everything is named `stock-mh-<pid>-...` (namespaces) and `smh<n>...` (interfaces), so a run never
touches another run's hosts; `close` kills every process left in the namespaces and deletes them,
and a new run first removes what a run whose process is gone left behind.
"""

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass

PREFIX = "stock-mh-"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def can_make_hosts() -> str | None:
    """Why namespaces cannot be made here (not root, no iproute2), or None."""
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    try:
        _ip("netns", "list")
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"iproute2 does not work here: {exc}"
    return None


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]


def _pids_in(namespace: str) -> list[int]:
    return [int(p) for p in _ip("netns", "pids", namespace, check=False).stdout.split()]


def kill_everything_in(namespace: str) -> None:
    """SIGKILL every process in the namespace and wait until they are gone."""
    for _ in range(50):
        pids = _pids_in(namespace)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_left_behind() -> None:
    """Namespaces of earlier runs whose test process is gone (killed before it could clean up)."""
    for namespace in _namespaces():
        found = re.fullmatch(rf"{PREFIX}(\d+)-\w+", namespace)
        if not found or _alive(int(found.group(1))):
            continue
        kill_everything_in(namespace)
        _ip("netns", "del", namespace, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_subnet() -> str:
    """A 10.213.N.0/24 no interface of this namespace is on (another run's, say)."""
    used = _ip("-4", "-o", "addr").stdout + _ip("-4", "route").stdout
    for n in [os.getpid() % 250 + 1, *range(1, 251)]:
        if f"10.213.{n}." not in used:
            return f"10.213.{n}"
    raise RuntimeError("no free 10.213.N.0/24 network")


@dataclass
class Host:
    """A network namespace with one address; commands run in it through `ip netns exec`."""

    role: str
    namespace: str
    address: str
    link: str  # the veth end in the switch namespace
    switch: str

    def command(self, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *args]

    def cut(self) -> None:
        """The link goes down at the switch: packets to and from the host are dropped, and neither
        side's connections are closed."""
        _ip("-n", self.switch, "link", "set", self.link, "down")

    def mend(self) -> None:
        _ip("-n", self.switch, "link", "set", self.link, "up")

    def kill_everything(self) -> None:
        """kill -9 of every process on the host: as a machine that dies, except that its kernel
        (this machine's) still closes their connections."""
        kill_everything_in(self.namespace)


class Network:
    """A switch and the hosts plugged into it; the root namespace is plugged in too."""

    def __init__(self) -> None:
        remove_left_behind()
        self.tag = f"{os.getpid()}"
        self.subnet = _free_subnet()
        self.switch = f"{PREFIX}{self.tag}-switch"
        self.hosts: list[Host] = []
        self._uplink = f"smh{os.getpid() % 100000}r"
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            self._plug(self._uplink, None, f"{self.subnet}.254")
        except Exception:
            self.close()
            raise

    def _plug(self, name: str, namespace: str | None, address: str) -> None:
        """A veth pair: NAME at the switch, on the bridge; its peer in NAMESPACE (None: this one)
        as eth0 (in this namespace: NAMEp) with ADDRESS."""
        peer = f"{name}p"
        _ip("link", "add", name, "type", "veth", "peer", "name", peer)
        _ip("link", "set", name, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", name, "master", "br0", "up")
        if namespace is None:
            _ip("addr", "add", f"{address}/24", "dev", peer)
            _ip("link", "set", peer, "up")
            return
        _ip("link", "set", peer, "netns", namespace)
        _ip("-n", namespace, "link", "set", peer, "name", "eth0")
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")

    def add_host(self, role: str) -> Host:
        number = len(self.hosts) + 2
        host = Host(role, f"{PREFIX}{self.tag}-{role}", f"{self.subnet}.{number}",
                    f"smh{os.getpid() % 100000}h{number}", self.switch)
        _ip("netns", "add", host.namespace)
        self.hosts.append(host)
        self._plug(host.link, host.namespace, host.address)
        return host

    def close(self) -> None:
        """Every process on every host killed, every namespace deleted (the veths go with the
        switch's)."""
        for host in self.hosts:
            kill_everything_in(host.namespace)
            _ip("netns", "del", host.namespace, check=False)
        kill_everything_in(self.switch)
        _ip("netns", "del", self.switch, check=False)
        # Its peer went with the switch; in case the switch was never made, the pair is ours alone.
        _ip("link", "del", f"{self._uplink}p", check=False)
