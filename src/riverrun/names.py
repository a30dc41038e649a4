"""Generated run names: ``nimble-falcon`` for flow runs, ``fetch_data-3fa`` for task runs."""

from __future__ import annotations

import os
import random
import time

__all__ = [
    "SCRIPT_MODULE",
    "callable_key",
    "generate_flow_run_name",
    "generate_task_run_name",
    "new_flow_run_id",
    "new_id",
]

#: The module name a flow's script is loaded under to resume one of its runs.
SCRIPT_MODULE = "__riverrun_main__"


def callable_key(fn: object, name: str) -> str:
    """A flow's or task's stable identity: its module and qualified name.

    A script loaded again to resume a run (under ``SCRIPT_MODULE``) gives the same keys
    as when it ran as ``__main__``.
    """
    module = getattr(fn, "__module__", None) or "?"
    if module == SCRIPT_MODULE:
        module = "__main__"
    return f"{module}.{getattr(fn, '__qualname__', name)}"


# A generator of riverrun's own: a user's random.seed() must neither repeat our ids nor
# be disturbed by them. Seeded from the kernel, and again in every forked child.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))

ADJECTIVES = [
    "agile",
    "amber",
    "ancient",
    "bold",
    "brave",
    "bright",
    "brisk",
    "calm",
    "clever",
    "cosmic",
    "crimson",
    "curious",
    "daring",
    "dazzling",
    "eager",
    "electric",
    "emerald",
    "fearless",
    "fierce",
    "gentle",
    "glossy",
    "golden",
    "graceful",
    "hidden",
    "humble",
    "icy",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "mighty",
    "misty",
    "nimble",
    "noble",
    "patient",
    "polished",
    "proud",
    "quick",
    "quiet",
    "radiant",
    "rapid",
    "resilient",
    "robust",
    "rustic",
    "scarlet",
    "serene",
    "sharp",
    "shiny",
    "silent",
    "silver",
    "sleek",
    "smart",
    "snowy",
    "solid",
    "spirited",
    "steady",
    "stellar",
    "stoic",
    "sturdy",
    "sunny",
    "swift",
    "tactful",
    "tidy",
    "tireless",
    "tranquil",
    "turquoise",
    "vivid",
    "wandering",
    "warm",
    "wise",
    "witty",
    "zealous",
]

ANIMALS = [
    "albatross",
    "alligator",
    "alpaca",
    "antelope",
    "badger",
    "bat",
    "bear",
    "beaver",
    "bison",
    "bobcat",
    "buffalo",
    "caribou",
    "cheetah",
    "cobra",
    "condor",
    "cormorant",
    "coyote",
    "crane",
    "crow",
    "deer",
    "dingo",
    "dolphin",
    "dove",
    "eagle",
    "eel",
    "egret",
    "elk",
    "falcon",
    "ferret",
    "finch",
    "fox",
    "gazelle",
    "gecko",
    "gibbon",
    "goose",
    "gopher",
    "hare",
    "hawk",
    "hedgehog",
    "heron",
    "hippo",
    "horse",
    "hound",
    "ibex",
    "ibis",
    "jackal",
    "jaguar",
    "kestrel",
    "kingfisher",
    "koala",
    "lemur",
    "leopard",
    "lion",
    "llama",
    "lynx",
    "macaw",
    "mamba",
    "marmot",
    "marten",
    "mink",
    "mole",
    "moose",
    "narwhal",
    "newt",
    "ocelot",
    "octopus",
    "orca",
    "oriole",
    "osprey",
    "otter",
    "owl",
    "panda",
    "panther",
    "parrot",
    "pelican",
    "penguin",
    "pheasant",
    "puffin",
    "puma",
    "python",
    "quail",
    "rabbit",
    "raccoon",
    "raven",
    "reindeer",
    "robin",
    "salmon",
    "seal",
    "shark",
    "sparrow",
    "squid",
    "stag",
    "starling",
    "stork",
    "swan",
    "tapir",
    "tiger",
    "toad",
    "toucan",
    "trout",
    "turtle",
    "viper",
    "walrus",
    "weasel",
    "whale",
    "wolf",
    "wombat",
    "wren",
    "yak",
    "zebra",
]


def generate_flow_run_name() -> str:
    """An ``adjective-animal`` name, e.g. ``nimble-falcon``."""
    return f"{_random.choice(ADJECTIVES)}-{_random.choice(ANIMALS)}"


# "000" to "fff": a task run name's suffix by lookup (formatting with a spec cost more
# than the rest of the name). Made at the first task run, not at import.
_suffixes: tuple[str, ...] | None = None


def generate_task_run_name(task_name: str) -> str:
    """``{task name}-{three hex digits}``, e.g. ``fetch_data-3fa``."""
    global _suffixes
    suffixes = _suffixes
    if suffixes is None:
        digits = "0123456789abcdef"
        suffixes = _suffixes = tuple(a + b + c for a in digits for b in digits for c in digits)
    return f"{task_name}-{suffixes[_random.getrandbits(12)]}"


# The bits of a version 4 UUID that are not random: cleared, then set.
_UUID4_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (4 << 76) | (0x8000 << 48)

# The 80 bits after the timestamp of a version 7 UUID, of which the version and variant
# are not random: cleared, then set.
_UUID7_KEEP = ~((0xF << 76) | (0x3 << 62)) & ((1 << 80) - 1)
_UUID7_SET = (7 << 76) | (0x2 << 62)
_MILLIS = (1 << 48) - 1

# The clock new_id() reads (a module attribute, so that tests can stop it).
_time_ns = time.time_ns
# (a millisecond, the text of an id's first two groups for it): many ids share it. One
# tuple, replaced whole, so that threads never pair a millisecond with another's text.
_millis_text: tuple[int, str] = (-1, "")


def new_flow_run_id() -> str:
    """A random (version 4) UUID string for a flow run.

    Flow runs are shown by the first characters of their id and looked up by any unique
    prefix (the CLI, the UI), so those characters must differ between runs made in the
    same minute, which a time-ordered id's do not. Flow runs are few next to task runs,
    so where their rows go in the B-trees matters little. (Randomness as ``new_id``'s.)
    """
    text = "%032x" % (_random.getrandbits(128) & _UUID4_KEEP | _UUID4_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID string for a task run.

    The first 48 bits are the Unix time in milliseconds, so ids made later sort later
    (within one millisecond, in random order): rows keyed or indexed by run id go in at
    the end of the database's B-trees instead of at random places in them.

    The other 74 bits (all but the version and variant) are random. ``uuid.uuid4()``
    asks the kernel for randomness on every call, which costs tens of microseconds in
    some sandboxes: too much per task. Run ids need uniqueness, not secrecy, so they come
    from a private generator seeded from the kernel and re-seeded in every forked child,
    so processes never share a stream.
    """
    global _millis_text
    millis = (_time_ns() // 1_000_000) & _MILLIS
    known = _millis_text
    if known[0] != millis:
        text = f"{millis:012x}"
        known = _millis_text = (millis, f"{text[:8]}-{text[8:]}-")
    text = "%020x" % (_random.getrandbits(80) & _UUID7_KEEP | _UUID7_SET)
    return f"{known[1]}{text[:4]}-{text[4:8]}-{text[8:]}"
