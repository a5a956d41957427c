"""Where kernel traces part: the first event that differs between models' runs.

Events are compared by ``(event, text)``, never by time: a model that is slower (a different
batch size, an extra scan) but takes the same decisions has the same trace.  The first index
at which the traces are not all equal is the divergence; each model's event there (or the end
of its trace) is shown, with the lines of the event's text that the other models' events do
not have — for an ``rmap_walk_ksm``, the pgoff range queried and the vma it MISSED.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ksmrepro.runner.results import TraceEvent

__all__ = ["Side", "TraceDivergence", "event_key", "first_divergence"]


def event_key(ev: TraceEvent) -> tuple[str, str]:
    """What two events must share to be the same kernel decision: name and text."""
    return ev.event, ev.text


@dataclass(frozen=True)
class Side:
    """One distinct event at the divergence, and the models whose trace has it there.

    :param event: the event, None when these models' traces end before the divergence
    :param own_lines: indices of ``event.text`` lines that no other side's event has
    :param remaining: events from here to the end of these models' trace
    """

    models: tuple[str, ...]
    event: TraceEvent | None
    own_lines: tuple[int, ...]
    remaining: int


@dataclass(frozen=True)
class TraceDivergence:
    """The first point where the models' traces differ.

    :param index: events before it, equal in every trace
    :param common: the last event every trace shares (None: they differ from the start)
    :param sides: one per distinct event at ``index``, in the order the models were given
    """

    index: int
    common: TraceEvent | None
    sides: tuple[Side, ...]


def first_divergence(models: Sequence[str],
                     traces: Sequence[Sequence[TraceEvent]]) -> TraceDivergence | None:
    """The first index where the traces are not all equal, or None if they are identical."""
    if len(models) != len(traces):
        raise ValueError("one trace per model")
    keys = [[event_key(e) for e in t] for t in traces]
    n = min((len(k) for k in keys), default=0)
    index = next((i for i in range(n) if any(k[i] != keys[0][i] for k in keys)), n)
    if all(len(k) == index for k in keys):
        return None
    groups: dict[tuple[str, str] | None, list[int]] = {}
    for m, k in enumerate(keys):
        groups.setdefault(k[index] if index < len(k) else None, []).append(m)
    events = {key: traces[ms[0]][index] if key is not None else None
              for key, ms in groups.items()}
    sides = []
    for key, ms in groups.items():
        ev = events[key]
        own: tuple[int, ...] = ()
        if ev is not None:
            others = {line for k2, e2 in events.items() if k2 != key and e2 is not None
                      for line in e2.text.split("\n")}
            own = tuple(i for i, line in enumerate(ev.text.split("\n")) if line not in others)
        sides.append(Side(tuple(models[m] for m in ms), ev, own,
                          len(traces[ms[0]]) - index))
    common = traces[0][index - 1] if index > 0 else None
    return TraceDivergence(index, common, tuple(sides))
