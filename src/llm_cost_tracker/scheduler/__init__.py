"""Scheduler engine: plans batches of LLM jobs (an MRCPSP) by vectorized simulated quantum annealing.

Imports nothing from the rest of the pipeline except the price catalog; what a running tracker adds
(its prices, measured speeds, budget remainders) comes in as a :class:`PlanInputs` of plain callables.
"""

from llm_cost_tracker.scheduler.annealing import QuantumAnnealing
from llm_cost_tracker.scheduler.batch import TaskBatch, parse_batch, read_batch
from llm_cost_tracker.scheduler.breaker import BreakerState, CircuitBreaker
from llm_cost_tracker.scheduler.checker import check_schedule
from llm_cost_tracker.scheduler.errors import InfeasibleError, ParseError
from llm_cost_tracker.scheduler.greedy import greedy_schedule
from llm_cost_tracker.scheduler.inputs import PlanInputs, Speed, fit_speed
from llm_cost_tracker.scheduler.jobshop import parse_jobshop, read_jobshop
from llm_cost_tracker.scheduler.pareto import find_non_dominated, hypervolume, pick_default
from llm_cost_tracker.scheduler.problem import Activity, Mode, Problem, Resource
from llm_cost_tracker.scheduler.psplib import parse_psplib, read_psplib
from llm_cost_tracker.scheduler.result import Schedule, ScheduleResult
from llm_cost_tracker.scheduler.search_settings import AnnealingSettings
from llm_cost_tracker.scheduler.solve import Scheduler, SolveSettings, minimize, optimize, solve_batch
from llm_cost_tracker.scheduler.termination import MaxSchedules, TerminateIfAny, TimeLimit

__all__ = [
    "Activity",
    "AnnealingSettings",
    "BreakerState",
    "CircuitBreaker",
    "InfeasibleError",
    "MaxSchedules",
    "Mode",
    "ParseError",
    "PlanInputs",
    "Problem",
    "QuantumAnnealing",
    "Resource",
    "Schedule",
    "ScheduleResult",
    "Scheduler",
    "SolveSettings",
    "Speed",
    "TaskBatch",
    "TerminateIfAny",
    "TimeLimit",
    "check_schedule",
    "find_non_dominated",
    "fit_speed",
    "greedy_schedule",
    "hypervolume",
    "minimize",
    "optimize",
    "parse_batch",
    "parse_jobshop",
    "parse_psplib",
    "pick_default",
    "read_batch",
    "read_jobshop",
    "read_psplib",
    "solve_batch",
]
