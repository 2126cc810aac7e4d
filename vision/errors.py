"""Errors that the command line and the dashboard turn into a one-line message.

Every class here carries a single plain-language line meant for the user, never a file path.
:class:`DamagedFileError` and :class:`OutOfSpaceError` derive from :class:`HindsightInputError`,
so that every handler that already shows a :class:`HindsightInputError` as one line (the upload
page, a job recording its failure) shows them too.
"""

from __future__ import annotations


class HindsightInputError(ValueError):
    """Input that cannot be analysed: empty, corrupt, not a video, unsupported, too short.

    The message is a single plain-language line meant for the user.
    """


#: What each kind of stored file is, as named in :class:`DamagedFileError`'s message.
STORED_KINDS: dict[str, str] = {
    "video": "the stored video for this clip is damaged",
    "report": "the stored report for this clip is damaged",
    "overlay": "the stored overlay video for this clip is damaged",
    "tracks": "the stored keypoint tracks for this clip are damaged",
    "comparison": "the stored comparison for this review is damaged",
    "file": "a stored file is damaged",
}


class DamagedFileError(HindsightInputError):
    """A stored file is missing or its content no longer matches its SHA-256.

    Parameters
    ----------
    kind
        What the file is for, a key of :data:`STORED_KINDS` (an unknown kind reads as ``"file"``);
        it chooses the message, e.g. ``"the stored report for this clip is damaged"``.
    sha256
        The digest the caller asked for (kept for the server log, not in the message).
    reason
        ``"missing"`` (no file) or ``"mismatch"`` (the bytes hash to something else).
    """

    def __init__(self, kind: str = "file", *, sha256: str = "", reason: str = "mismatch") -> None:
        self.kind = kind if kind in STORED_KINDS else "file"
        self.sha256 = sha256
        self.reason = reason
        super().__init__(STORED_KINDS[self.kind])


class OutOfSpaceError(HindsightInputError):
    """The server's disk or quota is full (``ENOSPC``, ``EDQUOT``, ``EFBIG``).

    Whatever was being written is left out entirely (no partial file); what was stored
    before is untouched, so the operation can be retried once space is freed.
    """

    MESSAGE = "the server is out of space"

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)
