"""The machine the testbed runs on: what it offers and what the testbed leaves on it.

- :mod:`.machine`: the capability probe (root, OVS, sch_netem, tools) and the pure choices
  made from it (link backend, OVS datapath, ``testbed doctor``'s lines);
- :mod:`.tracking`: marks on everything the testbed creates, tracked processes, the run lock;
- :mod:`.clean`: ``testbed clean``, which removes marked objects and nothing else;
- :mod:`.files`: atomic file writes.
"""
