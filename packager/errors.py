"""The one exception hierarchy of cdnpack; cli.py maps each class to an exit code."""

from __future__ import annotations


class CdnpackError(Exception):
    """Base of every error cdnpack reports to a user as one line, never as a traceback."""

    exit_code = 4


class InputError(CdnpackError):
    """The user's input (a media file, an option, a config) cannot be used as given."""

    exit_code = 2


class OutputExistsError(InputError):
    """Refusing to replace an existing output without --force: nothing may be lost silently."""


class ToolError(CdnpackError):
    """A required external tool (ffmpeg, ffprobe, Shaka Packager) is missing or unusable."""

    exit_code = 3


class TranscodeError(CdnpackError):
    """ffmpeg failed on input that probed fine; carries ffmpeg's last lines for diagnosis."""

    exit_code = 4


class BitstreamError(CdnpackError):
    """An ISO-BMFF file does not have the structure the packager relies on."""

    exit_code = 4


class BudgetError(CdnpackError):
    """A performance gate failed: at least one region x CDN budget was missed."""

    exit_code = 1


class UnlicensedError(CdnpackError):
    """A rights gate failed: a territory that must play has no grant in force then, or a
    release would never play anywhere."""

    exit_code = 1


class EndpointError(CdnpackError):
    """A network endpoint the job needs (S3 results store, ...) is unreachable or refuses us."""

    exit_code = 3
