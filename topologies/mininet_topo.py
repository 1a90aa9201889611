"""One step of a link schedule as a Mininet ``Topo``, for plain Mininet (``mn --custom``).

The testbed itself replays a schedule on a network it builds (``testbed run``); this is
for users who want one frozen snapshot in stock Mininet::

    from topologies.mininet_topo import ScheduleTopo
    topo = ScheduleTopo(schedule_or_path, step=0, rate_scale=1e-4)

or from the command line, with the Python that has this repository's dependencies
(Mininet runs ``--custom`` files with ``exec``, so the repository must be importable)::

    sudo PYTHONPATH=. .venv/bin/python /usr/bin/mn --custom topologies/mininet_topo.py \\
        --topo schedule,results/x/RUN/schedule.parquet,0,1e-4 --link tc \\
        --switch ovs,protocols=OpenFlow13 --controller remote

Nodes: switch ``s<node id>`` (datapath id node id + 1, as the testbed) per node; host
``h<node id>`` per compute satellite and ground station on its own switch, addressed as
the testbed addresses it (10.100.0.0/16 + node id + 1). Links: every link *up* at that
step, with TCLink's ``delay`` (the one-way delay, e.g. ``"12.345ms"``) and ``bw``
(``capacity_bps x rate_scale`` in Mbit/s). TCLink's delay needs ``sch_netem`` in the
kernel; its ``bw`` is capped at 1000 Mbit/s, so a larger rate is an error here instead
of being dropped with a log line.
"""

from __future__ import annotations

import ipaddress
import os

from mininet.topo import Topo

from topologies.errors import TopologyError
from topologies.schedule import Schedule

HOST_NET = ipaddress.IPv4Network("10.100.0.0/16")   # the testbed's host network
HOST_KINDS = ("compute", "ground")
TCLINK_MAX_MBPS = 1000.0      # mininet.link.TCIntf.bwParamMax


class ScheduleTopo(Topo):
    """Switches, hosts and the links up at ``step`` of ``schedule`` (a Schedule or its file)."""

    def build(self, schedule, step=0, rate_scale=1e-4):
        if isinstance(schedule, (str, os.PathLike)):
            schedule = Schedule.load(schedule)
        step, rate_scale = int(step), float(rate_scale)
        if not rate_scale > 0:
            raise TopologyError(f"rate_scale: must be > 0, got {rate_scale}")
        for row in schedule.nodes.itertuples(index=False):
            n = int(row.node_id)
            self.addSwitch(f"s{n}", dpid=f"{n + 1:016x}")
            if row.kind in HOST_KINDS:
                self.addHost(f"h{n}", ip=f"{HOST_NET.network_address + n + 1}/{HOST_NET.prefixlen}",
                             mac="02:6c:6d:%02x:%02x:%02x" % (((n + 1) >> 16) & 0xFF, ((n + 1) >> 8) & 0xFF,
                                                             (n + 1) & 0xFF))
                self.addLink(f"h{n}", f"s{n}")
        links = schedule.links_at(step)
        links = links[links["up"].to_numpy()]
        for a, b, delay_s, capacity_bps in zip(links["a"].to_numpy(), links["b"].to_numpy(),
                                               links["delay_s"].to_numpy(), links["capacity_bps"].to_numpy()):
            bw_mbps = float(capacity_bps) * rate_scale / 1e6
            if bw_mbps > TCLINK_MAX_MBPS:
                raise TopologyError(f"link ({a}, {b}): {bw_mbps:g} Mbit/s exceeds Mininet TCLink's "
                                    f"{TCLINK_MAX_MBPS:g} Mbit/s limit; use a smaller rate_scale")
            self.addLink(f"s{int(a)}", f"s{int(b)}", delay=f"{float(delay_s) * 1e3:.3f}ms", bw=bw_mbps)


#: For ``mn --custom topologies/mininet_topo.py --topo schedule,PATH[,STEP[,RATE_SCALE]]``.
topos = {"schedule": ScheduleTopo}
