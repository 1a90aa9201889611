"""The end-to-end slice: the smallest real run of the whole stack.

A chain of ``--satellites`` OVS switches (default 3) joined by laser links shaped at
``--rate-mbps`` with ``--delay-ms`` one-way delay each, one host at each end, the os-ken
controller installing shortest paths (``min_hop``), then a real ping and a real iperf3
between the two hosts. Results go to ``results/slice/<run_id>/`` (manifest.json,
summary.json, ping.csv, iperf3.json). Expected RTT = 2 x links x delay; the measured
zero-delay overhead of the switches is reported next to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path

from .errors import EnvironmentProblem, InputError, RunFailed
from .results import RunDir, git_commit, package_versions


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--satellites", type=int, default=3, help="switches in the chain (>= 2)")
    p.add_argument("--delay-ms", type=float, default=5.0, help="one-way delay per laser link, ms")
    p.add_argument("--rate-mbps", type=float, default=20.0,
                   help="shaped rate per link, Mbit/s (200 Gbps x rate_scale; default rate_scale 1e-4)")
    p.add_argument("--pings", type=int, default=20, help="ping count (5 per second)")
    p.add_argument("--iperf-s", type=float, default=5.0, help="iperf3 duration, s")
    p.add_argument("--backend", default="auto", help="link backend: auto, netem or delayline")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root folder")
    p.add_argument("--of-port", type=int, default=None, help="OpenFlow port on 127.0.0.1 (default: a free one)")


def parse_ping(text: str) -> tuple[list[float], int, int]:
    """(RTTs in seconds, transmitted, received) from iputils ping output."""
    rtts = [float(m) / 1e3 for m in re.findall(r"time=([0-9.]+) ms", text)]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    if not m:
        raise RunFailed(f"could not read ping output: {text.strip()[-200:]!r}")
    return rtts, int(m.group(1)), int(m.group(2))


def iperf3_between(src_ns: str, dst_ns: str, dst_ip: str, duration_s: float, omit_s: float = 1.0) -> dict:
    """Runs a real iperf3 (server bound to the destination host's address); returns its JSON."""
    from .tracking import Spawned, run_tracked
    server = Spawned(["iperf3", "-s", "-1", "-B", dst_ip, "-J"], role="iperf3-server", netns=dst_ns,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while True:   # wait for the server to listen
            r = subprocess.run(["ip", "netns", "exec", dst_ns, "ss", "-ltnH", f"src {dst_ip}:5201"],
                               capture_output=True, text=True)
            if r.stdout.strip() or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        r = run_tracked(["iperf3", "-c", dst_ip, "-t", str(duration_s), "-O", str(omit_s), "-J"],
                        "iperf3-client", netns=src_ns, timeout_s=duration_s + omit_s + 30)
        try:
            out = json.loads(r.stdout)
        except ValueError:
            raise RunFailed(f"iperf3 produced no result: {r.stderr.strip() or r.stdout.strip()[-200:]}") from None
        if "error" in out:
            raise RunFailed(f"iperf3: {out['error']}")
        return out
    finally:
        server.stop()


def run(args: argparse.Namespace) -> int:
    from . import probe
    from .controller import Controller, check_port_free
    from .links import BACKENDS
    from .network import Network
    from .plan import chain_plan
    from .tracking import RunLock, run_tracked

    if args.satellites < 2:
        raise InputError(f"--satellites: a chain needs at least 2, got {args.satellites}")
    if not args.delay_ms > 0:
        raise InputError(f"--delay-ms: must be > 0, got {args.delay_ms}")
    if not args.rate_mbps > 0:
        raise InputError(f"--rate-mbps: must be > 0, got {args.rate_mbps}")
    caps = probe.require_runnable()
    backend_name = probe.choose_backend(caps, args.backend)
    datapath = probe.choose_datapath(caps)
    delay_s, rate_bps = args.delay_ms / 1e3, args.rate_mbps * 1e6
    plan = chain_plan(args.satellites, delay_s, rate_bps)
    src, dst = plan.hosts[0], plan.hosts[-1]
    n_links = len(plan.links)

    if args.of_port is not None:
        check_port_free(args.of_port, "OpenFlow")   # before anything is created
    with RunLock():
        run_dir = RunDir.create(args.results / "slice")
        manifest = {
            "experiment": "slice", "run_id": run_dir.run_id,
            "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
            "config": {"satellites": args.satellites, "delay_s_per_link": delay_s, "rate_bps_per_link": rate_bps,
                       "rate_scale": rate_bps / 200e9, "speedup": 1.0},
            "backend": backend_name, "delay_emulated": True, "ovs_datapath": datapath,
            "git_commit": git_commit(), "versions": package_versions(),
            "host": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()},
        }
        run_dir.write_json("manifest.json", manifest)
        ctl = Controller("min_hop", {}, run_dir.path / "controller.log", of_port=args.of_port)
        backend = BACKENDS[backend_name](caps)
        with ctl, Network(plan, backend, datapath, ctl.of_port, run_dir.run_id) as net:
            print(f"slice: built {args.satellites} switches, {n_links} laser links "
                  f"({args.delay_ms:g} ms, {args.rate_mbps:g} Mbit/s each), backend {backend_name}, "
                  f"datapath {datapath} in {sum(net.timings_s.values()):.2f} s")
            from .feedmsg import topology_message, state_message_from_plan
            ctl.request(topology_message(plan))
            net.wait_connected()
            applied = ctl.request(state_message_from_plan(plan, step=0, t_s=0.0))
            r = run_tracked(["ping", "-n", "-c", str(args.pings), "-i", "0.2", "-W", "2", dst.ip], "ping",
                            netns=src.netns, timeout_s=args.pings * 0.2 + 10)
            ctl.check_alive()
            rtts, sent, received = parse_ping(r.stdout)
            iperf = iperf3_between(src.netns, dst.netns, dst.ip, args.iperf_s)
            ctl.check_alive()
            backend.check_alive()
        (run_dir.path / "ping.txt").write_text(r.stdout)
        run_dir.write_text("ping.csv", "seq,rtt_s\n" + "".join(f"{i},{x:.6f}\n" for i, x in enumerate(rtts)))
        run_dir.write_json("iperf3.json", iperf)
        thr_bps = iperf["end"]["sum_received"]["bits_per_second"]
        expected_rtt_s = 2 * n_links * delay_s
        rtts_sorted = sorted(rtts)
        summary = {
            "expected_rtt_s": expected_rtt_s,
            "rtt_min_s": rtts_sorted[0] if rtts else None,
            "rtt_median_s": rtts_sorted[len(rtts) // 2] if rtts else None,
            "rtt_max_s": rtts_sorted[-1] if rtts else None,
            "ping_sent": sent, "ping_received": received, "ping_loss": 1 - received / sent if sent else None,
            "shaped_rate_bps": rate_bps, "iperf3_bps": thr_bps, "iperf3_fraction_of_rate": thr_bps / rate_bps,
            "controller": {"algorithm": "min_hop", "flow_mods": applied.get("flow_mods")},
            "build_s": net.timings_s,
        }
        run_dir.write_json("summary.json", summary)
        run_dir.complete()
    print(f"slice: ping {received}/{sent} received, RTT median {summary['rtt_median_s'] * 1e3:.2f} ms "
          f"(geometry {expected_rtt_s * 1e3:.2f} ms); iperf3 {thr_bps / 1e6:.2f} Mbit/s "
          f"of {args.rate_mbps:g} shaped ({100 * thr_bps / rate_bps:.1f}%)")
    print(f"slice: results in {run_dir.path}")
    return 0 if received == sent else 1
