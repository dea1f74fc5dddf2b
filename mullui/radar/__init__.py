"""The collision radar wired into mullui: agents' records in, ``collisions`` events out.

The collision engine (:mod:`mullui.collisions`) answers "whose unmerged work overlaps, and
would it conflict" from git alone. This package decides *which* agents take part (local
agents with a branch whose work is neither merged nor removed: working, blocked, done,
failed or stopped alike), writes each agent's collisions into its record through a
``collisions`` event (only when they changed, so an idle fleet writes nothing), and raises
one inbox item per *new* conflict, held by the newer agent of the pair.

Callers: the supervisor (with a long-lived :class:`CollisionCache`, on state changes and
every ``[collisions] interval_s`` while agents work), ``mullui ls`` and ``mullui collisions``
(one throwaway cache per call; skipped outright when fewer than two agents have work).

Two processes may refresh at once (a ``mullui ls`` while the supervisor works); each
writes what it saw, and the reducer only raises a conflict item when the record did not
already know that conflict, so the race can leave a result one refresh stale, never a
duplicate inbox item.

Inside: :mod:`.members` (who takes part, the engine call), :mod:`.refresh` (records in and
out), :mod:`.report` (``mullui collisions``, merge advice), :mod:`.scheduler` (the
supervisor's timing), :mod:`.index` (the collision guard's index). Callers pass a
:class:`mullui.context.Context` (paths, store, config); the radar never imports the
workspace.
"""

from __future__ import annotations

from mullui.radar.members import agents_with_work, eligible, work_of
from mullui.radar.refresh import NewConflict, refresh, refresh_quietly, supervisor_alive
from mullui.radar.report import Pair, Report, advice, collisions_report, merge_advice
from mullui.radar.scheduler import Scheduler

__all__ = [
    "NewConflict",
    "Pair",
    "Report",
    "Scheduler",
    "advice",
    "agents_with_work",
    "collisions_report",
    "eligible",
    "merge_advice",
    "refresh",
    "refresh_quietly",
    "supervisor_alive",
    "work_of",
]
