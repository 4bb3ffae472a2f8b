"""Run one page's Python blocks, in order, as one program: ``python run_page.py < page.json``.

The page comes on stdin as JSON, ``{"path": ..., "blocks": [{"line": ..., "source": ...}]}``
(``test_code_blocks.py`` sends it). Every block runs in the same module namespace, so a
later block uses what an earlier one defined, as in a REPL session or a notebook:

- a block with a top-level ``await`` (or ``async for``, ``async with``) runs on the page's
  event loop, switched to one virtual clock for the whole page (``stoic.testing``), so the
  waits of a retry or a rate limiter take no real time;
- any other block runs as plain Python, so a block that is a whole program ending in
  ``asyncio.run(main())`` runs as written, on its own loop and real time.

Tracebacks name the markdown file and its line. The run fails on the first block that
raises, on any warning (warnings are errors), and on an exception that Python could only
report, not raise (a coroutine never awaited, an error in ``__del__``).
"""

import ast
import asyncio
import gc
import inspect
import json
import sys
import threading
import traceback
import types
import warnings
from pathlib import Path

# Blocks import what a user's program would: not this directory's modules.
del sys.path[0]

from stoic.testing import VirtualClock  # noqa: E402


def main() -> int:
    page = json.load(sys.stdin)
    path = str(Path(page["path"]).resolve())
    warnings.simplefilter("error")
    unraisable: list[str] = []
    sys.unraisablehook = lambda hook: unraisable.append(
        "".join(traceback.format_exception(hook.exc_value))
        + f"(in {hook.object!r})\n"
        + (hook.err_msg or "")
    )

    # What asyncio and threads only log (a task's exception nobody retrieved, a failing
    # callback, an exception in a thread) fails the page too. Every loop the blocks make
    # (asyncio.run's included) comes from this policy, and reports to it.
    def report(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        error = context.get("exception")
        text = str(context.get("message", ""))
        if isinstance(error, BaseException):
            text += "\n" + "".join(traceback.format_exception(error))
        unraisable.append(text)

    class Reporting(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            loop = super().new_event_loop()
            loop.set_exception_handler(report)
            return loop

    asyncio.set_event_loop_policy(Reporting())
    threading.excepthook = lambda hook: unraisable.append(
        "".join(traceback.format_exception(hook.exc_value)) + f"(in thread {hook.thread!r})\n"
    )
    # The blocks are the program: they run as the __main__ module of a file of that name.
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    clock = VirtualClock()

    async def on_virtual_time(code: types.CodeType) -> None:
        with clock.switch_running_loop():
            await eval(code, module.__dict__)

    with asyncio.Runner() as runner:
        for block in page["blocks"]:
            try:
                # Blank lines above the code give it the markdown file's line numbers.
                source = "\n" * (block["line"] - 1) + block["source"]
                code = compile(
                    source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
                )
                if code.co_flags & inspect.CO_COROUTINE:
                    runner.run(on_virtual_time(code))
                else:
                    exec(code, module.__dict__)
            except BaseException:
                print(f"the block at {page['path']}:{block['line']} raised:", file=sys.stderr)
                traceback.print_exc()
                return 1
    gc.collect()  # so that what is left unawaited or unclosed is reported now
    if unraisable:
        print("raised where Python could only report it:", *unraisable, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
