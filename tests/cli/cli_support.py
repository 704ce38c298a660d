"""Running `keynode serve` as a real process for the CLI tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def keynode_serve(args: list[str], address_pattern: str) -> Iterator[str]:
    """Start `keynode serve ARGS`, yield the address it reports, stop it with SIGTERM.

    ``address_pattern`` is a regular expression whose first group is the address in the
    server's start-up line on stderr. The server must exit cleanly (0) when stopped.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "keynode.cli.main", "serve", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr
    try:
        address = None
        for line in proc.stderr:
            found = re.search(address_pattern, line)
            if found:
                address = found.group(1)
                break
        assert address, "the server did not report its address"
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            proc.stderr.close()
