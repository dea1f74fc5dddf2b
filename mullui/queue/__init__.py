"""Queued agents: acting on the queue's plan (``tick.py``), budgets (``budget.py``),
chains (``chains.py``) and backlog files (``backlog.py``).

A queued agent starts when three things hold: its predecessor (``after``) is ``done``, the
review bottleneck allows it (``max_unreviewed``), and a slot is free (``max_running``, per
host for remote agents).  That decision, and the lock that makes "decide + start" one
step, is part of spawning and lives below this package, in
``mullui.operations.admission``; its public names are re-exported here.
"""

from mullui.model import CANNOT_START, STUCK_PREFIX
from mullui.operations.admission import (
    admission,
    expand_prev,
    is_stuck,
    last_log_line,
    plan,
    predecessor_reason,
    prev_environment,
    prev_values,
    substitute,
    unreviewed,
    wait_reason,
)
from mullui.queue.backlog import TASK_KEYS, BacklogTask, parse_backlog, spawn_backlog
from mullui.queue.budget import enforce_budget, over_budget
from mullui.queue.chains import ChainRun, chain_runs, spawn_chain
from mullui.queue.tick import tick

__all__ = [
    "CANNOT_START",
    "STUCK_PREFIX",
    "TASK_KEYS",
    "BacklogTask",
    "ChainRun",
    "admission",
    "expand_prev",
    "chain_runs",
    "enforce_budget",
    "is_stuck",
    "last_log_line",
    "over_budget",
    "parse_backlog",
    "plan",
    "predecessor_reason",
    "prev_environment",
    "prev_values",
    "spawn_backlog",
    "spawn_chain",
    "substitute",
    "tick",
    "unreviewed",
    "wait_reason",
]
