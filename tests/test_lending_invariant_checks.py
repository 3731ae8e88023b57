"""The invariants of contracts and disbursement are explicit checks raising domain errors, not ``assert``
statements (which ``python -O`` removes)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lending import contracts, disbursement
from lending.application_exceptions import ContractIncomplete
from lending.models import Contract, Disbursement, Loan
from tests.lending_flow_support import V, advance_to, make_world, start

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("module", ["lending/disbursement.py", "lending/contracts.py", "lending/servicing/prepayments.py",
                                    "lending/servicing/versions.py"])
def test_no_assert_guards_an_invariant(module):
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    asserts = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert asserts == [], f"{module}: assert on lines {asserts}"


def test_a_signed_contract_without_a_start_date_is_refused_with_a_domain_error(session):
    w = make_world(session)
    app = advance_to(session, w, start(session, w), "disbursement")
    contract = contracts.contract_for(session, app.id)
    session.execute(Contract.__table__.update().where(Contract.id == contract.id).values(start_date=None))
    session.expire_all()
    with pytest.raises(ContractIncomplete) as refused, session.begin_nested():
        disbursement.disburse(session, app.id, viewer=V(w.finance), funder_reference="FR-NO-START")
    assert refused.value.code == "contract_incomplete" and refused.value.status == 409
    assert session.scalar(select(func.count()).select_from(Disbursement)) == 0
    assert session.scalar(select(func.count()).select_from(Loan)) == 0


def test_the_modules_still_guard_under_python_optimize():
    # Under -O an assert is gone; the explicit checks remain in the compiled code.
    code = "import lending.disbursement as d; print('ContractIncomplete' in d.disburse.__code__.co_names)"
    out = subprocess.run([sys.executable, "-O", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "SCRM_ENV": "test"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
