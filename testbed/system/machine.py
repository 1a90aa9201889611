"""Capability probe: what this machine offers, and the choices the testbed makes from it.

``probe()`` gathers facts (root, OVS daemons and datapath, sch_netem, tools, os-ken,
Skyfield data, the delay-line binary) into a frozen :class:`Capabilities`. Pure functions
turn facts into decisions (:func:`choose_backend`, :func:`choose_datapath`) and into the
doctor's report (:func:`doctor_lines`). The rest of the testbed uses these same functions,
so ``testbed doctor`` is never a separate truth.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import EnvironmentProblem, InputError

TOOLS = ("ip", "tc", "ovs-vsctl", "ovs-ofctl", "iperf3", "ethtool", "ping")
SETUP_HINT = "run 'make setup' as root"
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


@dataclass(frozen=True)
class Capabilities:
    is_root: bool
    ovs_running: bool
    ovs_version: str | None
    ovs_kernel_module: bool
    netem: bool
    netem_detail: str
    tools: dict[str, str | None] = field(default_factory=dict)
    os_ken: str | None = None
    skyfield_data: bool = False
    delayline_binary: str | None = None


# ---------------------------------------------------------------- pure decisions

def choose_datapath(caps: Capabilities) -> str:
    """OVS datapath type: ``system`` (kernel module) where it exists, else ``netdev`` (userspace)."""
    return "system" if caps.ovs_kernel_module else "netdev"


def choose_backend(caps: Capabilities, requested: str = "auto") -> str:
    """Link-shaping backend: ``netem`` where the kernel has sch_netem, else ``delayline``.

    Raises :class:`InputError` if a backend is requested that this machine cannot run.
    """
    if requested not in ("auto", "netem", "delayline"):
        raise InputError(f"link backend: expected auto, netem or delayline, got {requested!r}")
    if requested == "netem" and not caps.netem:
        raise InputError(f"link backend 'netem' requested but this kernel has no sch_netem ({caps.netem_detail})")
    if requested == "delayline" or (requested == "auto" and not caps.netem):
        if not caps.delayline_binary:
            raise EnvironmentProblem(f"the delay line (lmtb-delayline) is not built: {SETUP_HINT}")
        return "delayline"
    return "netem"


def parse_netem_probe(returncode: int, stderr: str) -> tuple[bool, str]:
    """Interprets ``tc qdisc add dev lo root netem delay 1ms`` run in a scratch namespace."""
    if returncode == 0:
        return True, "sch_netem present"
    msg = stderr.strip().splitlines()[-1] if stderr.strip() else f"tc exit {returncode}"
    if "unknown" in msg.lower() or "no such file" in msg.lower():
        return False, "kernel has no sch_netem (" + msg + ")"
    return False, "netem probe failed: " + msg


def parse_ovs_version(text: str) -> str | None:
    """``ovs-vsctl --version`` first line, e.g. 'ovs-vsctl (Open vSwitch) 3.1.0' -> '3.1.0'."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.rsplit(" ", 1)[-1] if "Open vSwitch" in first else None


def can_run(caps: Capabilities) -> list[str]:
    """Problems that stop an emulation run (empty list: the testbed can run)."""
    problems = []
    if not caps.is_root:
        problems.append("not root: network namespaces, OVS and tc need root (use sudo)")
    if not caps.ovs_running:
        problems.append(f"Open vSwitch daemons are not running: {SETUP_HINT} (or '{OVS_CTL} start')")
    for tool in ("ip", "tc", "ovs-vsctl", "ovs-ofctl", "iperf3", "ethtool", "ping"):
        if not caps.tools.get(tool):
            problems.append(f"{tool} not found: {SETUP_HINT}")
    if not caps.os_ken:
        problems.append(f"os-ken is not importable: {SETUP_HINT}")
    if not caps.netem and not caps.delayline_binary:
        problems.append(f"no way to emulate delay: no sch_netem and no lmtb-delayline binary: {SETUP_HINT}")
    return problems


def doctor_lines(caps: Capabilities) -> list[tuple[bool, str]]:
    """One (ok, text) line per fact, in the order ``testbed doctor`` prints them."""
    lines = [
        (caps.is_root, "root: yes" if caps.is_root else "root: no — run as root (sudo)"),
        (caps.ovs_running,
         f"Open vSwitch: running ({caps.ovs_version})" if caps.ovs_running
         else f"Open vSwitch: not running — {SETUP_HINT} or '{OVS_CTL} start --system-id=random'"),
        (True, f"OVS datapath: {choose_datapath(caps)}"
               + ("" if caps.ovs_kernel_module else (" (no openvswitch kernel module: userspace datapath in the run's own"
                                                " ovs-vswitchd daemons, one per 16 switches; offloads off on veths)"))),
    ]
    if caps.netem:
        lines.append((True, "link backend: netem (" + caps.netem_detail + ")"))
    elif caps.delayline_binary:
        lines.append((True, f"link backend: delayline ({caps.netem_detail}; delay emulated by {caps.delayline_binary})"))
    else:
        lines.append((False, f"link backend: none — {caps.netem_detail} and lmtb-delayline not built: {SETUP_HINT}"))
    for tool in TOOLS:
        path = caps.tools.get(tool)
        lines.append((path is not None, f"{tool}: {path}" if path else f"{tool}: missing — {SETUP_HINT}"))
    lines.append((caps.os_ken is not None,
                  f"os-ken: {caps.os_ken}" if caps.os_ken else f"os-ken: not importable — {SETUP_HINT}"))
    lines.append((caps.skyfield_data,
                  "Skyfield data: offline (skyfield-data)" if caps.skyfield_data
                  else f"Skyfield data: skyfield-data missing — {SETUP_HINT}"))
    return lines


# ---------------------------------------------------------------- gathering facts

def _run(argv: list[str], timeout_s: float = 5.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except (FileNotFoundError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(argv, 127, "", str(e))


def delayline_binary() -> str | None:
    """Path of the compiled delay line (built by the setup step next to the venv's python)."""
    for cand in (Path(sys.prefix) / "bin" / "lmtb-delayline", Path(sys.executable).parent / "lmtb-delayline"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which("lmtb-delayline")


def _probe_netem(is_root: bool) -> tuple[bool, str]:
    if not is_root:
        return False, "not probed (needs root)"
    # A scratch network namespace (unshare -n) so nothing on the host is touched.
    r = _run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
    return parse_netem_probe(r.returncode, r.stderr)


def probe() -> Capabilities:
    is_root = os.geteuid() == 0
    tools = {t: shutil.which(t) for t in TOOLS}
    ovs_running = False
    ovs_version = None
    if tools["ovs-vsctl"]:
        ovs_running = _run(["ovs-vsctl", "--timeout=3", "show"]).returncode == 0
        ovs_version = parse_ovs_version(_run(["ovs-vsctl", "--version"]).stdout)
    netem, netem_detail = _probe_netem(is_root)
    os_ken = None
    if importlib.util.find_spec("os_ken") is not None:
        try:
            from importlib.metadata import version
            os_ken = version("os-ken")
        except Exception:  # noqa: BLE001 - metadata may be absent in odd installs
            os_ken = "importable"
    return Capabilities(
        is_root=is_root,
        ovs_running=ovs_running,
        ovs_version=ovs_version,
        ovs_kernel_module=Path("/sys/module/openvswitch").exists(),
        netem=netem,
        netem_detail=netem_detail,
        tools=tools,
        os_ken=os_ken,
        skyfield_data=importlib.util.find_spec("skyfield_data") is not None,
        delayline_binary=delayline_binary(),
    )


def require_runnable(caps: Capabilities | None = None) -> Capabilities:
    """Probes (unless given) and raises :class:`EnvironmentProblem` with the first problem."""
    caps = caps or probe()
    problems = can_run(caps)
    if problems:
        raise EnvironmentProblem(problems[0])
    return caps
