"""Errors for user mistakes: the CLI prints them on one line, never as a traceback."""


class AvrepError(Exception):
    """A user-facing error (bad input, bad arguments); the message names the file and the reason."""


class MediaError(AvrepError):
    """A media file could not be read or does not meet the requirements."""


class NoFaceError(MediaError):
    """No face was found where one was required."""


class ConfigError(AvrepError, ValueError):
    """A model/generator config names an unknown key or holds a bad value; the message names the key.

    Also a ValueError, so code written against the encoders' former ValueError keeps working."""
