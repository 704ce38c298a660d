"""Two-party protocols as transport-free state machines (testable in one process)."""
