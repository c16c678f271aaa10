"""The one error type users see: a single line naming the file:line or flag at fault."""


class InputError(Exception):
    """Bad input from the user (a file, a line of it, a flag); the CLI prints it on one line and exits 2.

    Example:
        raise InputError(f"{path}:{line_number}: expected 10 tab-separated columns, got 7")
    """
