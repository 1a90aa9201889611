"""A job the network or its power kept from finishing is a result, not a crash.

Two real replay agents on loopback; from 0.8 s on their accelerators are paused (clock
fraction 0, as the power model gives a satellite in eclipse at its battery reserve), so
the second iteration's compute never ends and both ranks time out. What they completed
(the first iteration's all-reduce) is still collected; every other failure still raises.
"""

import json
import time

import pytest

from testbed.agent import EXIT_CONNECT, EXIT_TIMEOUT, EXIT_VERIFY
from testbed.agent.local import run_local
from testbed.workload import Collective, Compute, Workload, expand
from testbed.workload.errors import WorkloadError
from testbed.workload.summary import run_records, summarise, unfinished_codes

SIZE = 64 * 1024


@pytest.fixture(scope="module")
def paused_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paused")
    ops = [[Collective(kind="all_reduce", size_bytes=SIZE, group=(0, 1), iteration=0),
            Compute(duration_s=1.0, iteration=1),
            Collective(kind="all_reduce", size_bytes=SIZE, group=(0, 1), iteration=1, deps=(1,))]
           for _ in range(2)]
    plan = expand(Workload(n_ranks=2, ops=ops, iterations=2))
    clock = folder / "clock.json"
    clock.write_text(json.dumps({"t0_unix": time.time(), "times_s": [0.0, 0.8, 1e6], "fraction": [1.0, 0.0, 0.0]}))
    run = run_local(plan, folder, timeout_s=2.5, extra_args=["--clock", str(clock)])
    return plan, run


def test_paused_ranks_time_out_and_their_completed_work_is_collected(paused_run):
    plan, run = paused_run
    # The first rank to time out closes its connections; its peer, still waiting, then exits
    # for the lost peer (or times out itself): both are the job not finishing.
    assert EXIT_TIMEOUT in run.exit_codes and unfinished_codes(run.exit_codes), run.stderr
    assert not unfinished_codes([EXIT_TIMEOUT, EXIT_VERIFY]) and not unfinished_codes([EXIT_CONNECT])
    runs = run_records(run.results)
    assert sorted(r["rank"] for r in runs) == [0, 1]
    assert all(r["status"] == "failed" and r["steps_done"] < r["steps_total"] for r in runs)
    s = summarise(run.results, plan, allow_unfinished=True)
    # The first all-reduce completed on both ranks; nothing of the second iteration did.
    assert sorted(s.collectives["rank"]) == [0, 1]
    assert set(s.collectives["iteration"]) == {0}
    assert set(s.iterations["iteration"]) <= {0}


def test_without_allow_unfinished_a_timeout_is_still_an_error(paused_run):
    plan, run = paused_run
    with pytest.raises(WorkloadError, match="did not complete"):
        summarise(run.results, plan)
