"""Mutation testing with mutmut: a score per module, not part of `make test`.

    scripts/mutate.sh                       every module below
    scripts/mutate.sh chat/limits.py ...    only these

Each module runs in its own snapshot of the code at HEAD (or, with --worktree, of the working tree
as it is; in var/mutate/<module>/, mutmut's mutants/ inside it), so edits made while it runs do not
mix into the figures. Each mutant runs only those tests of its module's files below that reach
the mutated function (mutmut records which tests call which function in a first, clean run),
in the order of the files, until the first failure. The shared mutmut settings are [tool.mutmut] in
pyproject.toml; this script adds the module and its tests. The embedded default is used (SQLite,
in-memory limits): any DATABASE_URL or REDIS_URL in the environment is ignored. TEST_REDIS_URL
(a Redis database of its own, e.g. redis://127.0.0.1:6379/10) is passed on: the limits' unit
tests then also run on Redis, so the Redis side of chat/limits.py is tested too.

The table goes to stdout and into docs/mutation-score.md (between the generated markers; rows of
modules not run this time are kept), the surviving mutants' diffs to
var/mutate/<module>/survivors.txt.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("MUTATE_WORK") or ROOT / "var" / "mutate")  # one per concurrent run
REPORT = ROOT / "docs" / "mutation-score.md"
MUTMUT = Path(sys.executable).parent / "mutmut"

# Module -> the test files whose tests may kill its mutants, fastest first (globs allowed).
# Chosen to keep a full run within about 40 minutes on 2 cores.
TESTS = {
    "knowledge/access.py": [
        "tests/test_access_unit.py",
        "tests/test_access_rows.py",
        "tests/test_chat_access.py",
        "tests/test_access_property.py",
    ],
    "chat/limits.py": [
        "tests/test_limits_unit.py",
        "tests/test_slot_expiry.py",
        "tests/test_limits.py",
    ],
    "knowledge/search/base.py": ["tests/test_access_unit.py", "tests/test_search_contract.py"],
    "knowledge/search/embedded.py": ["tests/test_search_contract.py"],
    "knowledge/search/azure.py": [
        "tests/test_search_contract.py",
        "tests/test_azure_strict.py",
        "tests/test_azure_end_to_end.py",
    ],
    "knowledge/indexing.py": ["tests/test_index_sync.py"],
    "chat/pipeline.py": [
        "tests/test_chat_protocol.py",
        "tests/test_chat_access.py",
        "tests/test_side_channels.py",
        "tests/test_page_privacy.py",
        "tests/test_llm.py",
    ],
}

# Modules whose every surviving mutant is named in the report (and explained below it).
EXPLAINED = {"knowledge/access.py", "chat/limits.py"}
BEGIN, END = "<!-- mutate:begin -->", "<!-- mutate:end -->"
COLUMNS = ["module", "mutants", "killed", "survived", "timeout", "no tests", "other", "score"]


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def tests_for(module: str, tree: Path) -> list[str]:
    found = []
    for pattern in TESTS[module]:
        found += sorted(str(p.relative_to(tree)) for p in tree.glob(pattern))
    return list(dict.fromkeys(found))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def snapshot(module: str, worktree: bool) -> Path:
    """A copy of the code (HEAD, or the working tree as it is now) with mutmut configured for
    this one module."""
    tree = WORK / slug(module)
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    if worktree:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.split(b"\0")
        for name in filter(None, (n.decode() for n in listed)):
            source = ROOT / name
            if source.is_file():
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, tree / name)
    else:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)

    # This checkout's mutation settings and plugin, whatever the snapshot's are.
    shutil.copy2(ROOT / "scripts" / "mutate_plugin.py", tree / "scripts" / "mutate_plugin.py")
    pyproject = (tree / "pyproject.toml").read_text()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    config["only_mutate"] = [module]
    config["pytest_add_cli_args_test_selection"] = tests_for(module, tree)
    section = "[tool.mutmut]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in config.items())
    # Replace the section (up to the next table header) with this module's copy of it.
    pyproject = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", pyproject)
    (tree / "pyproject.toml").write_text(pyproject.rstrip() + "\n\n" + section)
    return tree


def environment(module: str) -> dict:
    drop = ("DATABASE_URL", "REDIS_URL", "RAGSITE_TEST_SCALEOUT", "RAGSITE_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["MUTATE_TEST_ORDER"] = ",".join(tests_for(module, WORK / slug(module)))
    env["PATH"] = f"{MUTMUT.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def database_template(tree: Path, env: dict) -> Path:
    """A migrated SQLite database for the test processes to copy (scripts/mutate_plugin.py), in
    a RAM disk where there is one: migrating for every mutant would cost more than its tests."""
    shm = Path("/dev/shm")
    here = f"ragsite-mutate-{tree.name}-{os.getpid()}"
    folder = shm / here if shm.is_dir() else tree / "var" / "test-dbs"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "template").mkdir(parents=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=tree,
        env={**env, "RAGSITE_DATA_DIR": str(folder / "template")},
        check=True,
    )
    return folder


def statuses(tree: Path, module: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = json.loads((tree / "mutants" / (module + ".meta")).read_text())
    return {name: status_by_exit_code[code] for name, code in meta["exit_code_by_key"].items()}


def row(module: str, found: dict[str, str], seconds: float) -> dict:
    count = {s: sum(1 for v in found.values() if v == s) for s in set(found.values())}
    total = len(found)
    killed, timeout = count.get("killed", 0), count.get("timeout", 0)
    survived, no_tests = count.get("survived", 0), count.get("no tests", 0)
    score = 100.0 * (killed + timeout) / total if total else 0.0
    return {
        "module": f"`{module}`",
        "mutants": total,
        "killed": killed,
        "survived": survived,
        "timeout": timeout,
        "no tests": no_tests,
        "other": total - killed - timeout - survived - no_tests,
        "score": f"{score:.1f} %",
        "seconds": round(seconds),
    }


def run_module(module: str, jobs: int, worktree: bool) -> tuple[dict, list[str]]:
    started = time.monotonic()
    tree = snapshot(module, worktree)
    print(f"== {module}: tests {', '.join(tests_for(module, tree))}", flush=True)
    log = tree / "mutmut.log"
    env = environment(module)
    databases = database_template(tree, env)
    env["MUTATE_DB_DIR"] = str(databases)
    env["MUTATE_DB_TEMPLATE"] = str(databases / "template" / "db.sqlite3")
    try:
        with log.open("w") as out:
            done = subprocess.run(
                [str(MUTMUT), "run", "--max-children", str(jobs)],
                cwd=tree,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    finally:
        shutil.rmtree(databases, ignore_errors=True)
    if done.returncode != 0 or not (tree / "mutants" / (module + ".meta")).exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutmut failed on {module} (exit {done.returncode}); {log}:\n{tail}")
    found = statuses(tree, module)
    survivors = sorted(n for n, s in found.items() if s not in ("killed", "timeout"))
    with (tree / "survivors.txt").open("w") as out:
        for name in survivors:
            shown = subprocess.run(
                [str(MUTMUT), "show", name], cwd=tree, env=environment(module), capture_output=True
            )
            out.write(shown.stdout.decode(errors="replace") + "\n")
    return row(module, found, time.monotonic() - started), [f"{n} ({found[n]})" for n in survivors]


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return head or "unknown"


def dirty(modules: list[str]) -> list[str]:
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    return [line[3:] for line in changed.splitlines()]


def previous() -> dict[str, str]:
    """The generated block's per-module entries from the last runs, keyed by module."""
    if not REPORT.exists():
        return {}
    text = REPORT.read_text()
    if BEGIN not in text:
        return {}
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return {
        m: json.loads(m_json) for m, m_json in re.findall(r"<!-- row (\S+) (\{.*\}) -->", block)
    }


def write_report(measured: dict[str, dict]) -> None:
    # Another run may have written rows meanwhile: per module, the latest measurement wins.
    results = previous()
    for module, entry in measured.items():
        if module not in results or entry["date"] >= results[module]["date"]:
            results[module] = entry
    ordered = [results[m] for m in TESTS if m in results]
    lines = [BEGIN, "", table([r["row"] for r in ordered]), ""]
    for r in ordered:
        lines.append(
            f"- `{r['module']}`: measured at {r['commit']}{r['dirty']} on {r['date']}, "
            f"{r['row']['seconds']} s; tests: {', '.join(f'`{t}`' for t in r['tests'])}"
        )
        if r["module"] in EXPLAINED and r["survivors"]:
            lines.append(f"  - not killed: {', '.join(f'`{s}`' for s in r['survivors'])}")
        elif r["survivors"]:
            lines.append(
                f"  - {len(r['survivors'])} not killed; their diffs: "
                f"`{r.get('diffs', f'var/mutate/{slug(r["module"])}/survivors.txt')}`"
            )
    lines.append("")
    lines += [f"<!-- row {m} {json.dumps(results[m])} -->" for m in TESTS if m in results]
    lines.append(END)
    block = "\n".join(lines)
    text = REPORT.read_text() if REPORT.exists() else f"# Mutation score\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    REPORT.write_text(head + block + rest.split(END, 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(TESTS)}")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATE_JOBS", "2")))
    parser.add_argument(
        "--worktree",
        action="store_true",
        help="mutate the working tree as it is, uncommitted changes included (default: HEAD)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not touch the docs file")
    args = parser.parse_args()
    modules = args.modules or list(TESTS)
    unknown = [m for m in modules if m not in TESTS]
    if unknown:
        parser.error(f"no test mapping for {unknown}; known: {', '.join(TESTS)}")

    results = {}
    rows = []
    for module in modules:
        measured_at = commit()
        changed = dirty([module, *TESTS[module]]) if args.worktree else []
        row_, survivors = run_module(module, args.jobs, args.worktree)
        rows.append(row_)
        print(table([row_]), flush=True)
        for name in survivors:
            print(f"  not killed: {name}")
        results[module] = {
            "module": module,
            "row": row_,
            "survivors": survivors,
            "tests": tests_for(module, WORK / slug(module)),
            "commit": measured_at,
            "dirty": f" (+ uncommitted {', '.join(changed)})" if changed else "",
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "diffs": os.path.relpath(WORK / slug(module) / "survivors.txt", ROOT),
        }
        if not args.no_report:
            write_report(results)
    print()
    print(table(rows))
    if not args.no_report:
        print(f"written to {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
