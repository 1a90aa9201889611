"""The emulated network: from an orbital schedule to live switches, and its replay.

- :mod:`.plan`: the pure description of what to build (switches, hosts, links, addresses);
- :mod:`.scenario`: a :class:`topologies.Schedule` -> plan + link timeline;
- :mod:`.network`: builds the plan into OVS bridges, namespaces and links, tears it down;
- :mod:`.ovs`: the Open vSwitch daemons (private sharded userspace daemons or the machine's);
- :mod:`.clock`: replays the timeline on the live network in (scaled) real time;
- :mod:`.georef`: the geometric reference RTT and the TCP payload rate of a shaped link;
- :mod:`.dilation`: time dilation, emulated <-> wall-clock units (pure).
"""
