"""Typed errors. The command line turns each into one line on stderr and its exit status.

``InputError`` (exit 2): something the user gave is wrong (a spec, a file, a flag).
``EnvironmentProblem`` (exit 1): the machine is not ready (not root, a daemon down,
a port in use, a tool missing). Messages say what is wrong, where, and how to fix it.
"""


class TestbedError(Exception):
    """Base class; ``exit_code`` is what the command line exits with."""

    exit_code = 1


class InputError(TestbedError, ValueError):
    """Bad input: a spec, a trace, a TLE file or a command-line value."""

    exit_code = 2


class EnvironmentProblem(TestbedError):
    """The machine cannot run the testbed as it is (privilege, daemon, tool, port)."""

    exit_code = 1


class RunFailed(TestbedError):
    """A run started but a component failed (controller died, agent stuck, data lost)."""

    exit_code = 1
