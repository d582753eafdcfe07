"""The one exception type for mistakes a user can make and fix."""


class UserError(Exception):
    """A problem with the user's input: the message names the file or flag and says how to fix it.

    Command-line entry points print it as a single line and exit with status 2.
    """
