"""One exception type for mistakes a user can make (bad settings, missing files, bad checkpoints).

The command line turns a :class:`KalsError` into one line on stderr and exit status 2; notebooks
show its message. Everything else is a bug and keeps its traceback.
"""


class KalsError(ValueError):
    """A user-fixable problem; the message says what is wrong and how to fix it."""

    def _render_traceback_(self):
        """IPython/Jupyter show this instead of a traceback through library internals."""
        return [f"\x1b[31mKalsError\x1b[0m: {self}"]


def cause(err: BaseException, limit: int = 160) -> str:
    """``"TypeName: first line of the message"`` (at most ``limit`` characters): the cause of a failure,
    for a one-line KalsError."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def check_int(name: str, value, minimum: int, hint: str = "") -> int:
    """Return ``value`` as int if it is an integer >= minimum, else raise KalsError."""
    is_integer = hasattr(value, "__index__") and not isinstance(value, bool)  # int, numpy int, 0-d tensor
    if not is_integer:
        raise KalsError(f"{name} must be an integer, got {value!r}{hint}")
    value = int(value)
    if value < minimum:
        raise KalsError(f"{name} must be >= {minimum}, got {value}{hint}")
    return value


def check_float(name: str, value, minimum: float = 0.0, strict: bool = False) -> float:
    """Return ``value`` as a finite float >= minimum (> minimum if strict), else raise KalsError."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise KalsError(f"{name} must be a number, got {value!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise KalsError(f"{name} must be finite, got {value}")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise KalsError(f"{name} must be {op} {minimum:g}, got {value:g}")
    return value


MAX_SEED = 2**31 - 1  # seeds are combined with epoch and step numbers; this keeps them in range


def check_seed(value) -> int:
    """Return ``value`` as a seed in [0, MAX_SEED], else raise KalsError."""
    value = check_int("seed", value, 0)
    if value > MAX_SEED:
        raise KalsError(f"seed must be at most {MAX_SEED}, got {value}")
    return value
