"""Markdown of the findings section: the verdict table, the disagreements, the detail tables (calibration stage).

Renders the dict of :func:`gelato.calibration.findings.measure_findings`; computes nothing.
:func:`findings_markdown` gives the page written as ``reports/findings.md``.
"""

from __future__ import annotations

import logging

from gelato.calibration.resampling import INCONCLUSIVE, NO, YES

log = logging.getLogger(__name__)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _est(d: dict) -> str:
    return f"{_fmt(d['value'])} [{_fmt(d['lo68'])}, {_fmt(d['hi68'])}]"


def verdict_table(findings: dict) -> str:
    """The table "finding / statistic / value per process / holds?"."""
    rows = []
    for row in findings["findings"]:
        values = "<br>".join(f"{p}: {v['text']}" + (f" ({v['verdict']})" if v.get("verdict") else "")
                             for p, v in row["per_process"].items())
        rows.append([row["id"], row["claim"], row["statistic"], values, f"**{row['verdict']}**"])
    return _table(["#", "paper's finding", "statistic (uncertainty)", "value per process", "holds?"], rows)


def disagreements(findings: dict) -> list[str]:
    """One line per finding that does not hold or cannot be decided on these samples."""
    out = []
    for row in findings["findings"]:
        if row["verdict"] == NO:
            out.append(f"- **{row['id']} does not hold here**: {row['claim']}")
        elif row["verdict"] == INCONCLUSIVE:
            out.append(f"- {row['id']} is inconclusive here (uncertainty straddles the criterion): {row['claim']}")
    return out


def _multiplicity(details: dict) -> str:
    rows = [[p, t["n_jets"], t["n_events"], _est(t["mean"]), _est(t["q90"]), _est(t["q99"])]
            for p, table in details["per_multiplicity"].items() for t in table]
    return _table(["process", "jets", "events", "mean score", "90% quantile", "99% quantile"], rows)


def _mjj(details: dict) -> str:
    rows = []
    for p, by_rate in details["mjj_quartiles"].items():
        for rate, q in by_rate.items():
            rows.append([p, rate, *(f"{q[k]['n_events']}: {_fmt(q[k]['q25'])} / {_fmt(q[k]['median'])} / "
                                    f"{_fmt(q[k]['q75'])}" for k in ("pass", "fail"))])
    header = ["process", "rate [Hz]", "passing: n: q25 / median / q75 [GeV]", "failing: n: q25 / median / q75 [GeV]"]
    return _table(header, rows)


def _fits(details: dict, dips: dict) -> str:
    rows = []
    for p, by_rate in details["fits"].items():
        for rate, f in by_rate.items():
            d = dips[p][rate]
            fit = (f"{_fmt(f['plateau'])}+-{_fmt(f['plateau_err'], 2)}", f"{_fmt(f['x50'])}+-{_fmt(f['x50_err'], 2)}",
                   f"{_fmt(f['width'])}+-{_fmt(f['width_err'], 2)}", f"{_fmt(f['chi2'])}/{f['ndf']}") if f["ok"] \
                else (f["message"], "", "", "")
            path = f"{_fmt(d['start'])}->{_fmt(d['bottom'])}->{_fmt(d['recovery'])} GeV"
            where = f" ({path})" if d["significance"] else ""
            dip = f"{d['significance']:.2f}{where}; {_fmt(d['sensitivity_sigma'], 2)}; {d['verdict']}"
            rows.append([p, rate, *fit, f["verdict"], dip])
    return _table(["process", "rate [Hz]", "plateau", "x50 [GeV]", "width [GeV]", "chi2/ndf", "turn-on?",
                   "dip sigma (start->bottom->recovery GeV); sensitivity sigma; dip?"], rows)


def _muons(details: dict) -> str:
    rows = []
    for rank, by_rate in details["slopes_per_rate"].items():
        for rate, f in by_rate.items():
            slope = f"{_fmt(1e3 * f['slope'])}+-{_fmt(1e3 * f['slope_err'], 2)}" if f["ok"] else f["message"]
            rows.append([rank, rate, slope, _fmt(f["mean_efficiency"]), _fmt(f["pt_span_gev"])])
    return _table(["muon", "rate [Hz]", "slope [1e-3 / GeV]", "mean efficiency", "pT span (5-95%) [GeV]"], rows)


def _ranking(details: dict, per_process: dict) -> str:
    rows = [[rate, " > ".join(f"{e['process']} {_est(e)}" for e in entries)]
            for rate, entries in details["ranking"].items()]
    plots = [f"[{p}]({v['plot']})" for p, v in per_process.items() if v.get("plot")]
    table = _table(["rate [Hz]", "processes by efficiency (68% Clopper-Pearson)"], rows)
    return table + ("\n\nScore distributions with the thresholds: " + ", ".join(plots) if plots else "")


def findings_markdown(findings: dict, title: str = "# The seed paper's findings on our samples") -> str:
    """The whole findings page: verdicts, disagreements, criteria, details."""
    rows = {r["id"]: r for r in findings["findings"]}
    s = findings["settings"]
    out = [title, "",
           "Each finding of the paper (section 3) is measured with the bit-accurate (emulated) scores and thresholds. "
           f"Intervals: 68% (bootstrap with {s['n_resamples']} resamples, seed {s['seed']}, on at most "
           f"{s['bootstrap_max_events']} events and rescaled; or Clopper-Pearson); "
           "verdicts use 95% intervals or significances as stated. The criteria are fixed in code "
           "(`gelato.calibration.findings`) and documented in docs/findings.md.", "",
           verdict_table(findings), "", "## Where our samples and the paper differ", ""]
    out += disagreements(findings) or ["Every finding holds on these samples."]
    out += ["", "## Criteria", ""]
    out += [f"- **{r['id']}** {r['criterion']}." for r in findings["findings"]]
    sections = [
        ("Score per jet multiplicity (finding 2)", "2a", lambda r: _multiplicity(r["details"])),
        ("mjj of events passing and failing each threshold (finding 3)", "3b", lambda r: _mjj(r["details"])),
        ("Turn-on fits and dips against leading-jet pT (finding 4)", "4a",
         lambda r: _fits(r["details"], rows["4b"]["details"]["dips"])),
        ("ZZ4lep endcap-muon slopes (finding 5)", "5",
         lambda r: _muons(r["details"]) if r["details"] else "(no ZZ4lep)"),
        ("Efficiency ranking (finding 6)", "6", lambda r: _ranking(r["details"], r["per_process"])),
    ]
    for heading, fid, render in sections:
        if fid in rows:
            out += ["", f"## {heading}", "", render(rows[fid])]
    return "\n".join(out) + "\n"


def index_section(findings: dict, link: str = "findings.md") -> str:
    """A short section for reports/index.md: each finding's verdict, and the link to the full page."""
    rows = [[r["id"], r["claim"], f"**{r['verdict']}**"] for r in findings["findings"]]
    counts = {v: sum(r["verdict"] == v for r in findings["findings"]) for v in (YES, NO, INCONCLUSIVE)}
    return "\n".join([
        "## The seed paper's findings on these samples", "",
        f"Statistics, uncertainties, criteria and details: [{link}]({link}) (also under `findings` in summary.json). "
        f"Of the {len(rows)} findings, {counts[YES]} hold here, {counts[NO]} do not and {counts[INCONCLUSIVE]} "
        f"{'is' if counts[INCONCLUSIVE] == 1 else 'are'} inconclusive.", "",
        _table(["#", "paper's finding", "holds?"], rows), "",
    ])
