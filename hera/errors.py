"""Exceptions whose message is a complete one-line explanation for the user.

The CLI prints ``hera: error: <message>`` and exits with status 2 for any :class:`HeraError`;
every other exception is a bug and keeps its traceback.
"""


class HeraError(Exception):
    """Base class: a user-facing problem (bad input, missing file, resource that does not fit)."""


class ConfigError(HeraError):
    """A config file or value is invalid (unknown key, wrong type, out of range)."""


class UnknownModelError(HeraError):
    """A model id that is not in ``models/``."""


class SpecError(HeraError):
    """A model spec (``models/<id>.yaml``) is malformed."""


class ResourceError(HeraError):
    """A configuration does not fit the machine (memory, disk, cores)."""


class NotBuiltError(HeraError):
    """A model or sample library that has not been built yet."""
