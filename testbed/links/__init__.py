"""Link backends: rate and propagation delay per laser or ground link.

:mod:`.backends` holds the registry (``BACKENDS``): ``netem`` where the kernel has
sch_netem, ``delayline`` elsewhere — a tap pair per link served by one C process,
``delayline.c`` in this folder (built by scripts/setup.sh into ``.venv/bin/lmtb-delayline``).
Every backend reads back what its data path holds (:meth:`~.backends.LinkBackend.fidelity`).
"""
