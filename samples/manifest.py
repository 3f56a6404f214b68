"""``MANIFEST.json``: the inventory of a sample directory, updated after each generation.

Samples stage.  One entry per event file: process, event count, sha256, size, seed,
pileup and a short settings summary, so later stages (and people) can check that the
files they read are the ones that were produced.  Entries of files not regenerated are
kept; the manifest is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from gelato.io import atomic_output
from gelato.samples.generate import ProcessOutput

log = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.json"


def sha256_of(path: Path) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_entry(output: ProcessOutput) -> dict:
    """The manifest record of one written event file."""
    attrs = output.attrs
    return {
        "process": output.process,
        "events": output.n_events,
        "generated": output.n_generated,
        "selection_efficiency": attrs["selection_efficiency"],
        "cross_section_pb": attrs["cross_section_pb"],
        "sha256": sha256_of(output.path),
        "size_bytes": output.path.stat().st_size,
        "seed": attrs["seed"],
        "pileup_mu": attrs["pileup_mu"],
        "pileup_pool_size": attrs["pileup_pool_size"],
        "settings": {
            "pythia": attrs["generator"]["process"],
            "description": attrs["generator"]["description"],
            "l1_jet_pt_min_gev": attrs["l1_emulation"]["jet_pt_min_gev"],
            "l1_tau_pt_min_gev": attrs["l1_emulation"]["tau_pt_min_gev"],
            "l1_muon_pt_min_gev": attrs["l1_emulation"]["muon_pt_min_gev"],
        },
    }


def update_manifest(out_dir: Path, outputs: Sequence[ProcessOutput], seconds: float, workers: int) -> Path:
    """Add or replace the entries of ``outputs`` in ``out_dir/MANIFEST.json``; return its path."""
    path = Path(out_dir) / MANIFEST_NAME
    manifest = {"files": {}}
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); move it away to regenerate") from None
    for output in outputs:
        manifest.setdefault("files", {})[output.path.name] = manifest_entry(output)
    manifest["last_run"] = {
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 1),
        "workers": workers,
        "files": sorted(o.path.name for o in outputs),
    }
    manifest["total_size_bytes"] = sum(entry["size_bytes"] for entry in manifest["files"].values())

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
