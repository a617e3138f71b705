"""squawk, the PostgreSQL migration linter, over each revision's SQL: every finding fixed or excused.

``alembic upgrade <prev>:<rev> --sql`` gives the SQL one revision runs on
PostgreSQL; squawk (PyPI ``squawk-cli``) reads it with ``alembic/squawk.toml``
(the rules left out everywhere, each with its reason). A finding that remains
must be excused in that revision's file, next to the operation, by a comment

    # squawk-ignore <rule>[, <rule>...]: <why it is safe anyway>

(the list may go on over several ``# squawk-ignore`` lines, the last with the
reason). A new revision that brings a finding nobody excused fails here, and so
does an excuse whose finding is gone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from service import db as service_db

pytestmark = pytest.mark.migrations

ROOT = Path(__file__).resolve().parents[2]
SQUAWK = Path(sys.executable).parent / "squawk"
CONFIG = ROOT / "alembic" / "squawk.toml"
#: Offline SQL needs only the dialect: nothing connects.
URL = "postgresql+psycopg://conduit@localhost/conduit"
_IGNORE = re.compile(r"^\s*#\s*squawk-ignore\s+(.*)$")


def _revisions() -> list[tuple[str, str, Path]]:
    """(previous, revision, file) from the first revision to the head."""
    script = ScriptDirectory.from_config(service_db.alembic_config(URL))
    ordered = list(reversed(list(script.walk_revisions("base", "heads"))))
    return [(r.down_revision or "base", r.revision, Path(r.path)) for r in ordered]  # type: ignore[misc]


def excused(source: str) -> dict[str, str]:
    """The rules a revision's file excuses, each with its reason."""
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines():
        match = _IGNORE.match(line)
        if match is None:
            assert not pending, f"squawk-ignore {pending} has no reason (`: why` after the rules)"
            continue
        rules, colon, reason = match[1].partition(":")
        pending += [rule.strip() for rule in rules.split(",") if rule.strip()]
        if colon:
            assert reason.strip(), f"squawk-ignore {pending}: the reason is empty"
            found.update(dict.fromkeys(pending, reason.strip()))
            pending = []
    return found


def findings(previous: str, revision: str, tmp_path: Path) -> dict[str, list[int]]:
    """squawk's findings on the revision's PostgreSQL SQL: rule -> lines."""
    env = {**os.environ, "CONDUIT_DATABASE_URL": URL}
    argv = [
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(ROOT / "alembic.ini"),
        "upgrade",
        f"{previous}:{revision}",
        "--sql",
    ]
    sql = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"-> {revision}" in sql  # alembic's comment heading the revision's statements
    path = tmp_path / f"{revision}.sql"
    path.write_text(sql)
    linted = subprocess.run(
        [str(SQUAWK), "--config", str(CONFIG), "--reporter", "json", str(path)], capture_output=True, text=True
    )
    assert linted.returncode in (0, 1), linted.stderr  # 1: findings
    rules: dict[str, list[int]] = {}
    for finding in json.loads(linted.stdout or "[]"):
        rules.setdefault(finding["rule_name"], []).append(finding["line"])
    return rules


@pytest.mark.parametrize(("previous", "revision", "path"), _revisions(), ids=lambda value: str(value)[:12])
def test_every_finding_of_squawk_on_a_revision_is_excused_next_to_it_and_every_excuse_is_needed(
    previous: str, revision: str, path: Path, tmp_path: Path
) -> None:
    found = findings(previous, revision, tmp_path)
    reasons = excused(path.read_text())

    unexcused = {rule: lines for rule, lines in found.items() if rule not in reasons}
    assert unexcused == {}, f"{path.name}: fix these in a new revision, or excuse them with why (see module doc)"
    assert set(reasons) <= set(found), f"{path.name}: excuses nothing needs: {sorted(set(reasons) - set(found))}"


def test_an_unexcused_finding_is_caught(tmp_path: Path) -> None:
    """The check can fail: a revision that takes users' lock without a timeout is a finding."""
    path = tmp_path / "new.sql"
    path.write_text("BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nCOMMIT;\n")
    linted = subprocess.run(
        [str(SQUAWK), "--config", str(CONFIG), "--reporter", "json", str(path)], capture_output=True, text=True
    )

    assert {finding["rule_name"] for finding in json.loads(linted.stdout)} >= {"require-lock-timeout"}
    assert excused("# squawk-ignore require-lock-timeout,\n# squawk-ignore prefer-text-field: new, empty\n") == {
        "require-lock-timeout": "new, empty",
        "prefer-text-field": "new, empty",
    }
