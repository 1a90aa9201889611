"""The one exception type of the workload package."""


class WorkloadError(ValueError):
    """A workload, trace, plan or generator parameter is invalid.

    The message always names what is wrong and where: the parameter, or the
    file (and line or node) that holds the bad value.
    """
