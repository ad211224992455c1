"""Errors for user mistakes: the CLI prints them on one line, never as a traceback."""

import importlib.util


class AvrepError(Exception):
    """A user-facing error (bad input, bad arguments); the message names the file and the reason.

    `param`: the library argument the error is about ("checkpoint", "max_duration"...), or a tuple of them,
    named in the message in library terms; the CLI adds the command-line flag each comes from
    (avrep.cli.flag_of)."""

    def __init__(self, *args: object, param: str | tuple[str, ...] | None = None):
        super().__init__(*args)
        self.param = param

    def __reduce__(self):
        # keep `param` across pickling (errors raised in worker processes reach the CLI this way)
        return (_rebuild, (type(self), self.args, self.param))


def _rebuild(cls: type, args: tuple, param: str | tuple[str, ...] | None) -> "AvrepError":
    err = cls(*args)
    err.param = param
    return err


class MediaError(AvrepError):
    """A media file could not be read or does not meet the requirements."""


class NoFaceError(MediaError):
    """No face was found where one was required."""


class ConfigError(AvrepError, ValueError):
    """A model/generator config names an unknown key or holds a bad value; the message names the key.

    Also a ValueError, so code written against the encoders' former ValueError keeps working."""


class MissingExtraError(AvrepError, ImportError):
    """An optional dependency (a setup.cfg extra) is not installed; the message names the extra to install."""


def require(modules: str | tuple[str, ...], extra: str, purpose: str, alt: str = "") -> None:
    """Raise MissingExtraError (one line) unless every module in `modules` can be found.

    `purpose` says what needs them ("avrep serve"), `extra` is the setup.cfg extra that installs them and
    `alt` an optional second way ("or 'avrep[gpu]' ..."). A module that is installed but fails to import is
    left to fail with its own error when imported: only absence is reported here.
    """
    names = (modules,) if isinstance(modules, str) else modules
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        also = f" {alt}" if alt else ""
        raise MissingExtraError(
            f"{purpose} needs {', '.join(missing)}, which is not installed: pip install 'avrep[{extra}]'{also}"
        )
