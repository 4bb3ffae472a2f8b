"""Frozen event objects and their delivery to listeners.

Every strategy reports what it did as one frozen event object (``RetryScheduled``,
``CircuitStateChanged``, ...), all subclasses of ``Event``. A listener is any callable taking
one event. Listeners attach to one strategy (its ``listeners=`` option) or to every strategy
(``add_listener``). Delivery happens outside any lock, and a listener that raises is logged on
the ``stoic`` logger, never raised into the call it observes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias, TypeVar, cast

__all__ = [
    "Event",
    "Listener",
    "Severity",
    "add_listener",
    "emit",
    "fast_new",
    "global_listeners",
    "listening",
    "pipeline_listeners",
    "remove_listener",
    "validate_listeners",
]

logger = logging.getLogger("stoic")


class Severity(enum.IntEnum):
    """How much an event matters; values match the ``logging`` levels."""

    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every stoic event. ``name`` is the strategy's name (``None`` when unnamed)."""

    severity: ClassVar[Severity] = Severity.INFO
    name: str | None


Listener: TypeAlias = Callable[[Event], object]
_E = TypeVar("_E", bound=Event)

#: Listeners of every strategy (``add_listener``). Mutated in place, never rebound, so
#: strategies import it once and test it per call.
global_listeners: list[Listener] = []
#: Listeners of the pipelines the current task's call runs in (a pipeline sets it).
pipeline_listeners: ContextVar[tuple[Listener, ...]] = ContextVar(
    "stoic_pipeline_listeners", default=()
)


def listening(own: tuple[Listener, ...]) -> bool:
    """Whether anyone can receive an event of a strategy whose own listeners are ``own``.

    Decided per call, so a pipeline with listeners never makes an unrelated call build
    events: the call's own strategy's listeners, those of the pipelines it runs in, and
    the global ones are all there is.
    """
    return bool(own or global_listeners or pipeline_listeners.get())


def add_listener(listener: Listener) -> None:
    """Deliver every event of every strategy to ``listener`` (in addition to per-strategy ones)."""
    if not callable(listener):
        raise TypeError(f"listener must be callable, got {listener!r}")
    global_listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    """Stop delivering events to a listener added by ``add_listener``; unknown ones are ignored."""
    with contextlib.suppress(ValueError):
        global_listeners.remove(listener)


def fast_new(cls: type[_E]) -> Callable[..., _E]:
    """A constructor for the frozen event class ``cls`` taking its fields in order, for the
    events built on a hot path (``AttemptCompleted``, ``PipelineCompleted``).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, about
    700 ns for five fields on the reference machine. This builds the event as an instance of
    a mutable twin (a subclass adding no slots, so the layout is the same), sets the fields
    with plain attribute stores, then makes it a ``cls`` by assigning ``__class__``: about
    290 ns, which takes a listened ``Retry.call`` from 3.07x to ~2.3x one with no listener
    (``benchmarks``' telemetry group). Same object, same fields, frozen from then on:
    ``tests/test_events.py`` holds every event class's two constructors equal. The twin
    is a subclass: it shows in ``cls.__subclasses__()`` (stoic's own event classes only
    use this, and nothing walks them).
    """
    names = [field.name for field in dataclasses.fields(cast(Any, cls))]
    # ``__delattr__`` too: while a class defines either in Python, attribute stores take
    # the slow generic path.
    twin = type(
        f"_Mutable{cls.__name__}",
        (cls,),
        {
            "__slots__": (),
            "__init__": object.__init__,
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        },
    )
    body = "".join(f"    event.{name} = {name}\n" for name in names)
    source = (
        f"def make({', '.join(names)}):\n    event = _twin()\n{body}"
        "    event.__class__ = _cls\n    return event\n"
    )
    namespace: dict[str, Any] = {"_twin": twin, "_cls": cls}
    exec(source, namespace)  # the class's own field names only
    return cast("Callable[..., _E]", namespace["make"])


def validate_listeners(listeners: Iterable[Listener]) -> tuple[Listener, ...]:
    """Check a ``listeners=`` option at construction time and freeze it as a tuple."""
    if listeners == ():  # the default: strategies are built at run time too
        return ()
    if callable(listeners):
        raise TypeError(
            f"listeners must be an iterable of callables taking one event, got the callable "
            f"{listeners!r}: pass a list, listeners=[{getattr(listeners, '__name__', 'fn')}]"
        )
    try:
        result = tuple(listeners)
    except TypeError:
        raise TypeError(
            f"listeners must be an iterable of callables taking one event, got {listeners!r}"
        ) from None
    for listener in result:
        if not callable(listener):
            raise TypeError(f"listeners must be callables taking one event, got {listener!r}")
    return result


def emit(listeners: Iterable[Listener], event: Event) -> None:
    """Deliver ``event`` to the strategy's listeners, its pipelines' ones, then the global ones.

    A listener that raises ``Exception`` is logged with its traceback and skipped; the caller
    never sees it. ``BaseException`` (cancellation, interrupts) is not caught.
    """
    outer = pipeline_listeners.get()
    if not outer and not global_listeners:
        # The common case, the strategy's own listeners only, without the group loop.
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                _failed(listener, event)
        return
    # The global list is copied: a listener may remove itself while it runs.
    for group in (listeners, outer, tuple(global_listeners)):
        for listener in group:
            try:
                listener(event)
            except Exception:
                _failed(listener, event)


def _failed(listener: Listener, event: Event) -> None:
    logger.exception("stoic listener %r failed on %s", listener, type(event).__name__)
