"""GPU-job workloads: model, files, generators, Chakra traces, expansion, timing.

Front door of the package; see README.md in this folder for the file formats.
"""

from testbed.workload.errors import WorkloadError
from testbed.workload.generators import GENERATORS
from testbed.workload.ideal import Simulation, simulate
from testbed.workload.jsonl import read_jsonl, write_jsonl
from testbed.workload.model import Collective, Compute, Op, Recv, Send, Workload
from testbed.workload.expand import expand, ideal_time_s
from testbed.workload.planfile import Plan, RankPlan, RankPlanFile, Step, Transfer, load_plan, load_rank_plan, save_plan
from testbed.workload.schedules import COLLECTIVE_KINDS, DEFAULT_ALGORITHM, busbw_factor
from testbed.workload.chakra import load_chakra, load_pytorch_host_trace
from testbed.workload.summary import Summary, read_results, summarise

__all__ = [
    "COLLECTIVE_KINDS", "DEFAULT_ALGORITHM", "GENERATORS", "Collective", "Compute", "Op", "Plan",
    "RankPlan", "RankPlanFile", "Recv", "Send", "Simulation", "Step", "Summary", "Transfer", "Workload",
    "WorkloadError", "busbw_factor", "expand", "ideal_time_s", "load_chakra", "load_plan",
    "load_pytorch_host_trace", "load_rank_plan", "read_jsonl", "read_results", "save_plan", "simulate", "summarise",
    "write_jsonl",
]
