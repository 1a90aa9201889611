"""Laser-mesh routing testbed for compute satellites.

The public Python API (everything the command line does, from a script or a notebook)::

    import testbed
    spec = testbed.load_spec("experiments/default.toml")     # or a dict, see load_spec
    run_dir = testbed.run(spec)                                # every algorithm x trial
    tables = testbed.load_results(run_dir)                     # tidy pandas DataFrames
    with testbed.open_network(spec) as net: ...                # the running network, as Mininet

Modules are imported on first use, so ``import testbed`` stays cheap.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("lasermesh-testbed")
except _metadata.PackageNotFoundError:     # a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__", "load_spec", "run", "load_results", "load_run", "open_network", "Emulation"]


def load_spec(source, base_dir=None):
    """An experiment :class:`~testbed.spec.Spec` from a TOML path or a dict (see experiments/README.md)."""
    from testbed.spec import load_spec as _load
    return _load(source, base_dir=base_dir) if base_dir is not None else _load(source)


def run(spec, results_root=None, log=print):
    """Runs every algorithm of ``spec`` (a Spec, a path or a dict) on the identical scenario,
    ``trials`` times; returns the run folder (see results/README.md)."""
    from testbed.experiment import run_experiment
    if not hasattr(spec, "algorithms"):
        spec = load_spec(spec)
    return run_experiment(spec, results_root=results_root, log=log)


def load_results(run_dir):
    """Every table of a run as tidy DataFrames with ``algorithm`` and ``trial`` columns."""
    from testbed.results import load_results as _load
    return _load(run_dir)


def load_run(run_dir):
    """A run folder validated and read for the report (:class:`testbed.results.RunData`)."""
    from testbed.results import load_run as _load
    return _load(run_dir)


def open_network(*args, **kwargs):
    """A spec's running network as a ``mininet.net.Mininet`` object, the orbit replaying in the
    background (``with testbed.open_network(spec) as net: ...``; see :mod:`testbed.mininet.api`)."""
    from testbed.mininet.api import open_network as _open
    return _open(*args, **kwargs)


def __getattr__(name):
    if name == "Emulation":        # one network with its controller, for custom traffic from a script
        from testbed.emulation import Emulation
        return Emulation
    raise AttributeError(f"module 'testbed' has no attribute {name!r}")
