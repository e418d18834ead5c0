"""The outcome of a validation run: each test case, the check x device matrix, the text shown.

``read_junit`` turns pytest's JUnit XML into ``CaseResult`` values; ``ValidationReport`` holds
them with the run's exit status, gives the matrix and the JSON for CI, and ``lines`` the text
the command prints (the CLI only colours it).
"""

from __future__ import annotations

import dataclasses
import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

_DEVICE = re.compile(r"\b((?:CPU|GPU):\d+)\b")
COLLECTION = "collection"  # the check name of a test module that could not be imported


@dataclass(frozen=True)
class CaseResult:
    """One test case: its file, name, device (None for device-independent tests) and outcome."""

    file: str
    name: str
    device: str | None
    outcome: str  # passed | failed | error | skipped
    message: str = ""

    @property
    def check(self) -> str:
        """The check's name: 'forward_matches_reference' from 'test_forward_...[CPU:0]'."""
        return self.name.split("[")[0].removeprefix("test_")


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one validation run."""

    files: tuple[Path, ...]
    cases: tuple[CaseResult, ...]
    returncode: int
    seconds: float
    timed_out: bool
    output_tail: str

    @property
    def crashed(self) -> bool:
        """The interpreter died (a signal, or no report) rather than pytest finishing."""
        return not self.timed_out and (self.returncode < 0 or self.returncode > 5)

    @property
    def ok(self) -> bool:
        """Every test ran and none failed (skips are allowed and reported)."""
        return (
            self.returncode == 0
            and not self.timed_out
            and bool(self.cases)
            and not any(c.outcome in ("failed", "error") for c in self.cases)
        )

    def matrix(self) -> tuple[list[str], dict[str, dict[str, str]]]:
        """Rows = checks (test functions), columns = devices ('-': device-independent).

        A cell is 'ok', 'skip', or 'FAIL' followed by the failing parameters (e.g. a dtype)
        and, when several files ran, the failing layers' test files.
        """
        devices = sorted({c.device or "-" for c in self.cases}, key=lambda d: (d == "-", d))
        several = len({c.file for c in self.cases}) > 1
        rows: dict[str, dict[str, list[CaseResult]]] = {}
        for case in self.cases:
            rows.setdefault(case.check, {}).setdefault(case.device or "-", []).append(case)
        table = {}
        for check, cells in rows.items():
            table[check] = {}
            for device, cases in cells.items():
                failed = [c for c in cases if c.outcome in ("failed", "error")]
                if failed:
                    labels = sorted({_parameters(c) for c in failed} - {""})
                    if several:
                        labels += sorted({Path(c.file).stem for c in failed})
                    table[check][device] = " ".join(["FAIL", *labels])
                elif all(c.outcome == "skipped" for c in cases):
                    table[check][device] = "skip"
                else:
                    table[check][device] = "ok"
        return devices, table

    def by_file(self) -> dict[str, dict[str, int]]:
        """Outcome counts per test file, in the order the files ran."""
        counts: dict[str, dict[str, int]] = {}
        for case in self.cases:
            outcome = counts.setdefault(case.file, {})
            outcome[case.outcome] = outcome.get(case.outcome, 0) + 1
        return counts

    def to_json(self) -> dict:
        """Everything a CI job needs: the verdict, the matrix, every case."""
        devices, table = self.matrix()
        return {
            "ok": self.ok,
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "crashed": self.crashed,
            "seconds": round(self.seconds, 3),
            "files": [str(f) for f in self.files],
            "devices": devices,
            "matrix": table,
            "files_outcomes": self.by_file(),
            "skipped": self.skipped_reasons(),
            "cases": [dataclasses.asdict(c) for c in self.cases],
        }

    def lines(self) -> list[tuple[str, str]]:
        """The report as text: ``(kind, line)`` pairs, kind one of plain, fail, skip."""
        devices, table = self.matrix()
        width = max([len("check"), *(len(check) for check in table)])
        cell = max([8, *(len(v) for row in table.values() for v in row.values())])
        header = "check".ljust(width) + "".join(f" {d:<{cell}}" for d in devices)
        out = [("plain", ""), ("plain", header.rstrip())]
        for check, row in table.items():
            cells = "".join(f" {row.get(d, ''):<{cell}}" for d in devices)
            line = (check.ljust(width) + cells).rstrip()
            out.append(("fail" if "FAIL" in line else "plain", line))
        if len(self.files) > 1:
            for file, outcomes in self.by_file().items():
                bad = outcomes.get("failed", 0) + outcomes.get("error", 0)
                counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
                out.append(
                    ("fail" if bad else "plain", f"{'FAIL' if bad else 'ok':<5} {file} ({counts})")
                )
        totals: dict[str, int] = {}
        for case in self.cases:
            totals[case.outcome] = totals.get(case.outcome, 0) + 1
        out.append(("plain", ", ".join(f"{n} {outcome}" for outcome, n in sorted(totals.items()))))
        out += [("skip", f"skipped: {reason}") for reason in self.skipped_reasons()]
        for case in self.cases:
            if case.outcome in ("failed", "error"):
                first = case.message.splitlines()[0] if case.message else ""
                out.append(("fail", f"FAILED {case.file}::{case.name}: {first}"))
        return out

    def skipped_reasons(self) -> list[str]:
        """Distinct reasons for skipped tests (e.g. 'no GPU visible ...')."""
        return sorted({c.message for c in self.cases if c.outcome == "skipped" and c.message})


def _parameters(case: CaseResult) -> str:
    """The test's parameters other than the device: 'float16' from 'x[CPU:0-float16]'."""
    inside = case.name.partition("[")[2].rstrip("]")
    return "-".join(p for p in inside.split("-") if not _DEVICE.fullmatch(p))


def read_junit(path: Path, root: Path) -> list[CaseResult]:
    """The test cases of a JUnit report, test files relative to the current folder."""
    try:
        tree = ElementTree.parse(path).getroot()
    except ElementTree.ParseError:
        return []
    cases = []
    for case in tree.iter("testcase"):
        outcome, message, text = "passed", "", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or "").strip()
                text = child.text or ""
                break
        classname, name = case.get("classname") or "", case.get("name", "")
        if message == "collection failure":  # the module itself: classname is empty
            module, name, message = name, f"test_{COLLECTION}", _collection_cause(text)
        else:
            module = classname
        found = _DEVICE.search(name)
        file = Path(root, module.replace(".", os.sep) + ".py")
        cases.append(
            CaseResult(
                file=_shown(file),
                name=name,
                device=found.group(1) if found else None,
                outcome=outcome,
                message=message,
            )
        )
    return cases


def _collection_cause(text: str) -> str:
    """'ModuleNotFoundError: No module named x' from the traceback of a collection error."""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if errors:
        return "cannot be imported: " + " ".join(errors)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "cannot be imported: " + (lines[-1] if lines else "unknown error")


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()
