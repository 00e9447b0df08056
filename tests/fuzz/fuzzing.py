"""Seeded fuzzing of the parsers the outside world reaches: the shared settings and helpers.

Every test in ``tests/fuzz`` feeds a parser generated input (raw bytes and text, and inputs
built close to the real format so they get past the first checks) and asserts the one
property that keeps a hostile peer from causing a 500, a traceback or a half-written record:
only the module's own error type escapes (:func:`only`). Anything else fails the test, and
Hypothesis shrinks it to a minimal example.

CI runs each test derandomized (the same examples every run, so a red CI is reproducible)
with a small budget: ``FUZZ_EXAMPLES`` (100) examples a test. A longer, fresh
(randomized) run is one command (README.md, "Two commands")::

    THRESHOLD_FUZZ_EXAMPLES=3000 .venv/bin/python -m pytest -q tests/fuzz -p no:cacheprovider

``--hypothesis-seed=N`` replays a long run's seed; a failure found there is pinned in the
test with ``@example(...)`` next to the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

T = TypeVar("T")

#: Examples a test in the short, derandomized CI run.
FUZZ_EXAMPLES = 100
_LONG = os.environ.get("THRESHOLD_FUZZ_EXAMPLES")

FUZZ = settings(
    max_examples=int(_LONG) if _LONG else FUZZ_EXAMPLES,
    # CI: the same examples every run. A long run explores afresh (its seed is printed on
    # failure; replay it with --hypothesis-seed).
    derandomize=not _LONG,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def only(
    errors: type[BaseException] | tuple[type[BaseException], ...], call: Callable[[], T]
) -> T | None:
    """Run ``call``; its own ``errors`` are a refusal (None), anything else escapes."""
    try:
        return call()
    except errors:
        return None


#: Text as JSON can carry it: any code point, lone surrogates (``"\\ud800"``) included.
ANY_TEXT = st.text(max_size=40) | st.text(
    st.characters(categories=["Cs"]) | st.characters(), max_size=12
)
#: JSON values as an attacker writes them: every type, odd numbers, deep-ish nesting.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def mutated(base: dict[str, Any], keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with some of its ``keys`` replaced by any JSON value, dropped, or kept, and
    maybe an unknown key added: claims that are almost right reach the deepest checks."""
    choice = st.sampled_from(("keep", "drop", "replace"))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out = dict(base)
        for key in keys:
            action = draw(choice)
            if action == "drop":
                out.pop(key, None)
            elif action == "replace":
                out[key] = draw(JSON)
        if draw(st.booleans()):
            out[draw(st.text(max_size=6))] = draw(JSON)
        return out

    return build()
