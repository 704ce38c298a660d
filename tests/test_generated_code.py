"""The committed generated code must be exactly what scripts/gen_protos.py produces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "src" / "keynode" / "v1"


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_protos"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_code_matches_proto_files(tmp_path: Path) -> None:
    gen = _load_generator()
    fresh = {p.name: p.read_bytes() for p in gen.generate(tmp_path)}
    committed = {
        p.name: p.read_bytes()
        for p in COMMITTED.iterdir()
        if p.name.endswith(gen.GENERATED_SUFFIXES)
    }
    assert sorted(committed) == sorted(fresh), "files added or removed: run scripts/gen_protos.py"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date with proto/: {stale}; run python scripts/gen_protos.py"
