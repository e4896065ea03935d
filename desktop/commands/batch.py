"""The exit status of commands that process several inputs, and their summary line.

Every such command (``faces``, ``eval-pairs``, ``gallery enroll --skip-bad``,
``gallery reembed``) processes all its inputs, then exits

* 0 when every input was processed;
* 1 when any failed: the others were still processed, and a last line
  ``facestyle: N of M <inputs> failed`` on stderr says how many;
* 2 when the command could not do its work at all (a usage error, a missing model, or
  nothing left to process), with the reason on stderr.

So a script can tell "all good" from "partly done" from "not done".
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_SOME_FAILED = 1


def exit_status_help(inputs: str) -> str:
    """The ``--help`` epilog that states the exit status, for a command over ``inputs``
    (a plural noun, e.g. "images")."""
    return (f"Exit status: 0 when every one of the {inputs} was processed; 1 when any "
            f"failed (the others are still processed, and a last line 'N of M {inputs} "
            "failed' goes to stderr); 2 when nothing could be done.")


def finish_batch(failed: int, total: int, inputs: str, detail: str = "") -> int:
    """Print the summary line when any of ``total`` inputs failed; return the exit status.

    ``detail`` is appended to the line (e.g. "; their pairs are left out").
    """
    if failed <= 0:
        return EXIT_OK
    print(f"facestyle: {failed} of {total} {inputs} failed{detail}", file=sys.stderr)
    return EXIT_SOME_FAILED
