"""The one error type of the dataset importer: bad input a user can fix."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input a user can fix; the message names the file, row or field and says what to do."""
