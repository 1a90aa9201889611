"""Result folders: ``results/<experiment>/<run_id>/`` (format in results/README.md).

- :mod:`.writer`: run folders created ``INCOMPLETE`` and completed last, files written atomically;
- :mod:`.manifest`: the one place a manifest is built, fidelity read back from the backend;
- :mod:`.tables`: an algorithm's tables in orbital time and its summary;
- :mod:`.reader`: the validating reader the report and users load runs with;
- :mod:`.trials`: where each trial's tables are, the manifest's trial keys;
- :mod:`.loader`: :func:`load_results`, one tidy DataFrame per table.
"""

from testbed.results.loader import load_results
from testbed.results.reader import RunData, find_run, load_run
from testbed.results.writer import INCOMPLETE, RunDir

__all__ = ["INCOMPLETE", "RunData", "RunDir", "find_run", "load_results", "load_run"]
