"""GPU-job workloads: model, files, generators, Chakra traces, expansion, timing.

Front door of the package; see README.md in this folder for the file formats.
"""

from .errors import WorkloadError
from .generators import GENERATORS
from .ideal import Simulation, ideal_time_s, simulate
from .jsonl import read_jsonl, write_jsonl
from .model import Collective, Compute, Op, Recv, Send, Workload
from .plan import Plan, RankPlan, RankPlanFile, Step, Transfer, expand, load_plan, load_rank_plan, save_plan
from .schedules import COLLECTIVE_KINDS, DEFAULT_ALGORITHM, busbw_factor
from .chakra import load_chakra, load_pytorch_host_trace
from .summary import Summary, read_results, summarise

__all__ = [
    "COLLECTIVE_KINDS", "DEFAULT_ALGORITHM", "GENERATORS", "Collective", "Compute", "Op", "Plan",
    "RankPlan", "RankPlanFile", "Recv", "Send", "Simulation", "Step", "Summary", "Transfer", "Workload",
    "WorkloadError", "busbw_factor", "expand", "ideal_time_s", "load_chakra", "load_plan",
    "load_pytorch_host_trace", "load_rank_plan", "read_jsonl", "read_results", "save_plan", "simulate", "summarise",
    "write_jsonl",
]
