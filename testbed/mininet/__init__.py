"""The running testbed as a Mininet network: Mininet's objects, CLI and scripts on it.

- :mod:`.net`: :class:`~.net.TestbedMininet`, a ``mininet.net.Mininet`` describing a built
  emulation (hosts in the testbed's namespaces, switches for its OVS bridges, links
  reporting the delays and states the clock applied);
- :mod:`.nodes`, :mod:`.links`: the Mininet node, interface and link classes behind it;
- :mod:`.cli`: :class:`~.cli.TestbedCLI`, Mininet's CLI with ``time``, ``delay``, ``path``;
- :mod:`.replay`: the clock in a background thread; installed paths from the step log;
- :mod:`.api`: :func:`~.api.open_network` (also ``testbed.open_network``).

Importing this package does not import Mininet; its modules do.
"""
