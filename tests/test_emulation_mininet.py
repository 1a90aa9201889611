"""Mininet inside (issue 15), on the real stack: Mininet's CLI driven through standard input
on the slice and on a 4x4 shell while its schedule replays, and a script using
``testbed.open_network`` that sees a path change under its own pings."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, leftovers
from testbed.net.georef import tcp_payload_rate_bps

pytestmark = pytest.mark.emulation


def iperf_server_bps(text: str) -> float:
    """The server's rate from Mininet's '*** Results: ['1.83 Mbits/sec', ...]' line, bit/s."""
    m = re.search(r"\*\*\* Results: \['([\d.]+) ([KMG])bits/sec'", text)
    assert m, text[-3000:]
    return float(m.group(1)) * {"K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def test_slice_cli_is_mininets_cli(testbed_cli, tmp_path):
    commands = ("pingall\npy len(net.hosts)\ndpctl dump-flows\niperf\nlink lms0 lms1 down\npingall\n"
                "link lms0 lms1 up\npingall\npath h0 h2\nexit\n")
    r = testbed_cli("slice", "--cli", "--results", str(tmp_path), input=commands, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    # The acceptance: Mininet's own pingall on the slice.
    assert "*** Ping: testing ping reachability" in out and "*** Results: 0% dropped (2/2 received)" in out
    assert re.search(r"(?m)^2$", r.stderr)                      # py len(net.hosts) (Mininet logs to stderr)
    # dpctl reaches the private OVS daemon of each switch: the controller's rules.
    assert out.count("OFPST_FLOW reply (OF1.3)") == 3 and "nw_dst=10.100.0.3 actions=output:" in out
    # iperf (iperf2) at the shaped 20 Mbit/s, payload-adjusted.
    ratio = iperf_server_bps(out) / tcp_payload_rate_bps(20e6)
    print(f"slice iperf: {iperf_server_bps(out) / 1e6:.3g} Mbit/s = {ratio:.3f} of the payload rate")
    # Never above the shaped rate; below it by what a loaded host costs. Mininet's iperf runs
    # 5 s, slow start included, and the delay line is a userspace process: 0.91-0.99 on an
    # idle host, 0.878 and 0.789 on CI hosts whose 2 cores also ran the UML lane. An unshaped
    # link would give many times the rate, a broken shaper a fraction of it.
    assert 0.70 <= ratio <= 1.05, ratio
    # A manual link change: pingall fails while it is down and works again once it is up.
    assert "lms0-lms1 down: a static network" in out and "*** Results: 100% dropped (0/2 received)" in out
    assert out.count("*** Results: 0% dropped (2/2 received)") == 2
    assert "h0 -> h2: lms0 lms1 lms2 (2 links" in out and "geometric RTT 20.000 ms" in out
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}


def shell_spec(folder: Path) -> Path:
    """A 4x4 shell (tests/specs/tiny.toml without background flow) for 40 s of orbit at
    rate_scale 1e-5: 2 Mbit/s links, whose 27 kB port queue holds a 110 ms RTT's window."""
    text = (REPO / "tests" / "specs" / "tiny.toml").read_text()
    text = text.split("[[background]]")[0].replace("duration_s = 4", "duration_s = 40")
    text += "\n[emulation]\nrate_scale = 1e-5\n"
    (folder / "shell.toml").write_text(text)
    return folder / "shell.toml"


def test_run_cli_on_a_4x4_shell_while_it_replays(testbed_cli, tmp_path):
    spec = shell_spec(tmp_path)
    a, b = "test4x4-p0-s0", "test4x4-p1-s0"
    commands = (f"time\npingall\npy len(net.hosts)\npath {a} {b}\ndelay {a} {b}\niperf {a} {b}\n"
                "dpctl dump-flows\nlinks\ntime\nexit\n")
    r = testbed_cli("run", str(spec), "--cli", "--results", str(tmp_path), input=commands, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "*** Ping: testing ping reachability" in out and "*** Results: 0% dropped (12/12 received)" in out
    assert re.search(r"(?m)^4$", r.stderr)
    times = [float(t) for t in re.findall(r"\*\*\* orbital t = ([\d.]+) s", out)]
    assert len(times) == 2 and times[1] > times[0] + 5        # the schedule replayed meanwhile
    m = re.search(rf"{a} -> {b}: (lms\d+(?: lms\d+)+) \((\d+) links.*geometric RTT ([\d.]+) ms", out)
    assert m and m.group(1).startswith("lms0") and m.group(1).endswith("lms4"), out[-3000:]
    assert float(m.group(3)) > 0
    ratio = iperf_server_bps(out) / tcp_payload_rate_bps(200e9 * 1e-5)
    print(f"4x4 iperf: {iperf_server_bps(out) / 1e6:.3g} Mbit/s = {ratio:.3f} of the payload rate; "
          f"path {m.group(1)}, geometric RTT {m.group(3)} ms; orbital times {times}")
    assert 0.70 <= ratio <= 1.05, ratio             # as in the slice's test above
    assert out.count("OFPST_FLOW reply (OF1.3)") == 16 and "nw_dst=10.100.0.5 actions=output:" in out
    assert re.search(r"lm0-1<->lm1-0 \(up, isl, [\d.]+ ms one-way, 2 Mbit/s\)", out)
    run = next((tmp_path / "tiny").iterdir())
    assert not (run / "INCOMPLETE").exists()
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}


def rtt_ms(ping_output: str) -> float:
    m = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/", ping_output)
    assert m, ping_output
    return float(m.group(1))


def test_a_mininet_script_sees_the_path_change_while_the_orbit_replays():
    import numpy as np
    import testbed
    from testbed.net.georef import geo_rtt_s

    spec = REPO / "tests" / "specs" / "mininet_polar.toml"
    with testbed.open_network(spec) as net:
        src, dst = net.hosts                     # satellites 51 and 61, +Grid neighbours at first
        link = net.link_by_pair[(51, 61)]
        delay_before_s = link.delay_s
        before = rtt_ms(src.cmd(f"ping -n -c 10 -i 0.1 {dst.IP()}"))
        t_before = net.orbital_time_s()
        # Satellite 61 climbs past 60 deg latitude at t = 43.5 s: the link goes down.
        while net.orbital_time_s() < 47.0:
            time.sleep(0.2)
        t_after = net.orbital_time_s()
        after = rtt_ms(src.cmd(f"ping -n -c 10 -i 0.1 {dst.IP()}"))
        assert not link.up and link.delay_s < delay_before_s      # the view follows the clock
        path = net.installed_path(src.name, dst.name)
        plan, tl = net.plan, net.replay.clock.timeline
        geo = geo_rtt_s(plan, tl, [(51, 61)])[:, 0] * 1e3
        k_before = int(np.searchsorted(tl.times_s, t_before))
        k_after = int(np.searchsorted(tl.times_s, t_after))
    print(f"API: min RTT {before:.2f} ms (geometry {geo[k_before]:.2f}) before, {after:.2f} ms "
          f"(geometry {geo[k_after]:.2f}) after; path now {path}")
    assert len(path) > 2                                          # a detour now
    # The measured minimum RTT sits on the geometry before and after, plus what the switches
    # and delay line add per link crossed (userspace OVS on 2 shared cores; measured +1.4 ms
    # over 1 link before, +4.3 ms over the 3-link detour, quiet). The bound is 3 ms per link:
    # under the full suite's load the minimum of 5 pings once exceeded 2 ms per link. The
    # detour is still told apart from the direct link by > 60 ms (below).
    assert geo[k_before] - 0.5 <= before <= geo[k_before] + 3.0, (before, geo[k_before])
    links = len(path) - 1
    assert geo[k_after] - 0.5 <= after <= geo[k_after] + 3.0 * links, (after, geo[k_after], path)
    assert after - before > 60
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}


def test_sigterm_in_the_cli_tears_everything_down(tmp_path):
    """SIGTERM (as Ctrl-C, which Mininet's CLI keeps for interrupting a command) while the CLI
    waits, with host shells started and a process left running in one: nothing remains."""
    import signal
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "slice", "--cli", "--results", str(tmp_path)],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        proc.stdin.write("h0 sleep 4321 &\nh2 true\npy 'shells ' + str(sum(h.shell_started for h in net.hosts))\n")
        proc.stdin.flush()
        seen = ""
        deadline = time.monotonic() + 120
        while "shells 2" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "shells 2" in seen, seen[-2000:]
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-2000:]
    assert "nothing the testbed made is left" in out
    assert leftovers() == {"bridges": [], "netns": [], "interfaces": [], "processes": []}
    assert subprocess.run(["pgrep", "-f", "sleep 4321"], capture_output=True).returncode == 1
