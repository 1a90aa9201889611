"""Traffic inside the emulated network, every process in a host's namespace and tracked.

- :mod:`.agents`: GPU-job replay agents (one per rank), read back as workload tables;
- :mod:`.probes`: RTT and one-way probes between host pairs (kernel timestamps), driving
  :mod:`.udpprobe`, the probe program run in each host namespace;
- :mod:`.flows`: background iperf3 TCP flows, read back as throughput rows;
- :mod:`.pcapreplay`: open-loop replay of pcap captures;
- :mod:`.tools`: ping and iperf3 for the shell, the slice and tests.
"""

from testbed.traffic.agents import AGENT_PORT, AgentGroup
from testbed.traffic.flows import BackgroundFlows
from testbed.traffic.probes import ProbeMesh

__all__ = ["AGENT_PORT", "AgentGroup", "BackgroundFlows", "ProbeMesh"]
