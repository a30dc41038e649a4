"""A flow with one task, as a whole process (the first run of a fresh home)."""

from __future__ import annotations

from benchmarks.workloads._common import api, parse, report, timed


def say_hello(name: str) -> str:
    return f"hello {name}"


if __name__ == "__main__":
    args = parse(1)
    if args.engine == "baseline":

        def hello() -> str:
            return say_hello("world")

        seconds = timed(hello)
    else:
        lib = api(args.engine)
        say = lib.task(say_hello)

        @lib.flow
        def hello() -> str:
            return say("world")  # type: ignore[no-any-return]

        seconds = timed(hello)
    report(args, seconds)
