"""Errors that the command line and the dashboard turn into a one-line message."""


class HindsightInputError(ValueError):
    """Input that cannot be analysed: empty, corrupt, not a video, unsupported, too short.

    The message is a single plain-language line meant for the user.
    """
