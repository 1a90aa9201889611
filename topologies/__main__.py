"""``python -m topologies ...``: the ``testbed topo`` command without the testbed."""

import sys

from .cli import main

sys.exit(main())
