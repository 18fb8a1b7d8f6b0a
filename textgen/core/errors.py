"""Errors a user can act on.

Every error raised for bad input is a `TextgenError` whose message says what was wrong and what to
do. The command line prints it as one line and exits with status 2; the app shows it in a box. A
traceback means a bug in our code, never bad input.
"""


class TextgenError(Exception):
    """Base for errors caused by input the user can fix."""


class CorpusError(TextgenError, ValueError):
    """The corpus cannot be used as given (encoding, format, too small, too big, binary...)."""


class ConfigError(TextgenError, ValueError):
    """A configuration value is out of range or unknown."""


class StoreError(TextgenError):
    """A run or corpus does not exist, or the store cannot be used."""
