"""The GPU-job replay agent: ``python -m testbed.agent --help``.

One agent per rank (compute satellite) executes its rank of a plan made by
``testbed.workload.expand``: compute as sleeps, collectives as point-to-point
transfers over persistent TCP connections, every transfer verified end to end.
"""

from testbed.agent.replay import (EXIT_CONFIG, EXIT_CONNECT, EXIT_OK, EXIT_TIMEOUT, EXIT_VERIFY, Agent, AgentError,
                     parse_address)

__all__ = ["Agent", "AgentError", "EXIT_CONFIG", "EXIT_CONNECT", "EXIT_OK", "EXIT_TIMEOUT", "EXIT_VERIFY",
           "parse_address"]
