"""The end-to-end slice: the smallest real run of the whole stack.

A chain of ``--satellites`` OVS switches (default 3) joined by laser links shaped at
``--rate-mbps`` with ``--delay-ms`` one-way delay each, one host at each end, the os-ken
controller installing shortest paths (``min_hop``), then a real ping and a real iperf3
between the two hosts (with ``--cli``, Mininet's CLI on the network first: see
testbed/mininet/cli.py). Results go to ``results/slice/<run_id>/`` (manifest.json,
summary.json, ping.csv, ping.txt, iperf3.json, controller.log). Expected RTT =
2 x links x delay; what the switches add on top is visible in the RTTs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from testbed.errors import InputError
from testbed.net.georef import tcp_payload_rate_bps

NOMINAL_CAPACITY_BPS = 200e9


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--satellites", type=int, default=3, help="switches in the chain (>= 2)")
    p.add_argument("--delay-ms", type=float, default=5.0, help="one-way delay per laser link, ms")
    p.add_argument("--rate-mbps", type=float, default=20.0,
                   help="shaped rate per link, Mbit/s (200 Gbps x rate_scale; default rate_scale 1e-4)")
    p.add_argument("--pings", type=int, default=20, help="ping count (5 per second)")
    p.add_argument("--iperf-s", type=float, default=5.0, help="iperf3 duration, s")
    p.add_argument("--backend", default="auto", help="link backend: auto, netem or delayline")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root folder")
    p.add_argument("--cli", action="store_true",
                   help="open Mininet's CLI on the built network first; the ping and iperf3 follow its exit")


def _mininet_cli(emu) -> None:
    """Mininet's CLI on the slice (a static network: no schedule replays)."""
    from testbed.mininet.cli import TestbedCLI
    from testbed.mininet.net import TestbedMininet
    net = TestbedMininet(emu)
    try:
        TestbedCLI(net)
    finally:
        net.stop()


def run(args: argparse.Namespace) -> int:
    from testbed.system import machine
    from testbed.emulation import Emulation
    from testbed.net.plan import chain_plan
    from testbed.results.manifest import base_manifest, record_fidelity
    from testbed.results.writer import RunDir
    from testbed.system.tracking import RunLock

    if args.satellites < 2:
        raise InputError(f"--satellites: a chain needs at least 2, got {args.satellites}")
    for name in ("delay_ms", "rate_mbps", "iperf_s"):
        if not getattr(args, name) > 0:
            raise InputError(f"--{name.replace('_', '-')}: must be > 0, got {getattr(args, name)}")
    if args.pings < 1:
        raise InputError(f"--pings: must be >= 1, got {args.pings}")
    caps = machine.require_runnable()
    backend_name = machine.choose_backend(caps, args.backend)
    delay_s, rate_bps = args.delay_ms / 1e3, args.rate_mbps * 1e6
    plan = chain_plan(args.satellites, delay_s, rate_bps)
    src, dst = plan.hosts[0].name, plan.hosts[-1].name
    n_links = len(plan.links)

    with RunLock():
        run_dir = RunDir.create(args.results / "slice")
        manifest = base_manifest(
            "slice", run_dir.run_id, backend_name, machine.choose_datapath(caps),
            config={"satellites": args.satellites, "delay_s_per_link": delay_s, "rate_bps_per_link": rate_bps,
                    "rate_scale": rate_bps / NOMINAL_CAPACITY_BPS, "speedup": 1.0})
        run_dir.write_json("manifest.json", manifest)
        with Emulation(plan, "min_hop", log_dir=run_dir.path, backend=backend_name, run_id=run_dir.run_id,
                       caps=caps, lock=False) as emu:
            print(f"slice: built {args.satellites} switches, {n_links} laser links "
                  f"({args.delay_ms:g} ms, {args.rate_mbps:g} Mbit/s each), backend {backend_name}, "
                  f"datapath {emu.datapath} in {sum(emu.network.timings_s.values()):.2f} s", flush=True)
            if args.cli:
                _mininet_cli(emu)
            ping = emu.ping(src, dst, count=args.pings, interval_s=0.2)
            iperf = emu.iperf3(src, dst, duration_s=args.iperf_s)
            emu.check_alive()
            record_fidelity(manifest, "slice", emu.fidelity())
            build_s = dict(emu.network.timings_s)
        run_dir.write_json("manifest.json", manifest)
        run_dir.write_text("ping.csv", "seq,rtt_s\n" + "".join(
            f"{s},{x:.6f}\n" for s, x in zip(ping.seqs, ping.rtts_s)))
        run_dir.write_json("iperf3.json", iperf)
        thr_bps = iperf["end"]["sum_received"]["bits_per_second"]
        expected_rtt_s = 2 * n_links * delay_s
        rtts = sorted(ping.rtts_s)
        summary = {
            "expected_rtt_s": expected_rtt_s,
            "rtt_min_s": rtts[0] if rtts else None,
            "rtt_median_s": rtts[len(rtts) // 2] if rtts else None,
            "rtt_max_s": rtts[-1] if rtts else None,
            "ping_sent": ping.sent, "ping_received": ping.received, "ping_loss": ping.loss,
            "shaped_rate_bps": rate_bps, "iperf3_bps": thr_bps, "iperf3_fraction_of_rate": thr_bps / rate_bps,
            # iperf3 counts TCP payload; the shaper counts whole frames (at most 1448 of 1514 bytes)
            "tcp_payload_rate_bps": tcp_payload_rate_bps(rate_bps),
            "iperf3_fraction_of_payload_rate": thr_bps / tcp_payload_rate_bps(rate_bps),
            "controller": {"algorithm": "min_hop", "flow_mods": emu.initial_reply.get("flow_mods")},
            "build_s": build_s,
        }
        run_dir.write_json("summary.json", summary)
        run_dir.complete()
    if rtts:
        print(f"slice: ping {ping.received}/{ping.sent} received, RTT median {summary['rtt_median_s'] * 1e3:.2f} ms "
              f"(geometry {expected_rtt_s * 1e3:.2f} ms); iperf3 {thr_bps / 1e6:.2f} Mbit/s "
              f"of {args.rate_mbps:g} shaped ({100 * thr_bps / rate_bps:.1f}%)")
    print(f"slice: results in {run_dir.path}")
    return 0 if ping.received == ping.sent else 1
