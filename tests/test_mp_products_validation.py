"""Products, the calculator (yuan strings, never floats), matching, Chinese validation, OpenAPI at /mp/docs."""

from __future__ import annotations

from tests.mp_support import make_offer


def test_products_are_listed_with_yuan_strings(session, mp):
    product = make_offer(session)
    rows = mp.client.get("/mp/products").json()["products"]
    row = next(r for r in rows if r["id"] == product.id)
    assert (row["min_amount"], row["max_amount"], row["terms_months"]) == ("10000.00", "100000.00", [12, 24])
    assert row["repayment_method_label"] == "等额本息" and row["annual_rate_percent"] == "12.00%"


def test_the_calculator_quotes_a_product(session, mp):
    product = make_offer(session)
    data = mp.client.post("/mp/calculator", json={"product_id": product.id, "amount": "50000.00",
                                                  "term_months": 12}).json()
    assert data["first_payment"] == "4442.44" and data["apr_percent"] == "12.00%"
    assert data["total_repayment"] == "53309.27" and data["periods"][-1]["balance"] == "0.00"
    assert all(isinstance(p["total"], str) for p in data["periods"])


def test_the_calculator_without_a_product_uses_the_engine_with_the_request_terms(session, mp):
    data = mp.client.post("/mp/calculator", json={"amount": "10000", "term_months": 6, "annual_rate": "0.36",
                                                  "repayment_method": "equal_principal"}).json()
    assert data["repayment_method_label"] == "等额本金" and data["first_payment"] == "1966.67"
    assert data["above_cap"] is True


def test_a_float_amount_is_refused_in_chinese(session, mp):
    product = make_offer(session)
    response = mp.client.post("/mp/calculator", json={"product_id": product.id, "amount": 50000.0,
                                                      "term_months": 12})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed" and body["message"].startswith("金额应为文本")


def test_an_amount_with_three_decimals_is_refused(session, mp):
    response = mp.client.post("/mp/calculator", json={"amount": "1.005", "term_months": 12, "annual_rate": "0.1",
                                                      "repayment_method": "bullet"})
    assert response.status_code == 422 and "最多两位小数" in response.json()["message"]


def test_a_missing_field_is_named_in_chinese(session, mp):
    response = mp.client.post("/mp/calculator", json={"amount": "1000"})
    assert response.status_code == 422
    assert response.json()["details"]["errors"] == [{"field": "term_months", "message": "期限不能为空"}]


def test_a_term_the_product_does_not_offer_is_refused_with_the_choices(session, mp):
    product = make_offer(session)
    response = mp.client.post("/mp/calculator", json={"product_id": product.id, "amount": "50000", "term_months": 7})
    assert response.status_code == 422 and "可选：12、24" in response.json()["message"]


def test_unknown_fields_are_refused(session, mp):
    mp.login("alice")
    response = mp.post("/applications", {"amount": "1000", "hack": True})
    assert response.status_code == 422 and "hack是未知字段" in response.json()["message"]


def test_matching_ranks_products_for_me(session, mp):
    cheap = make_offer(session, annual_rate="0.10")
    dear = make_offer(session, annual_rate="0.15")
    mp.login("alice")
    data = mp.post("/products/match", {"amount": "50000", "term_months": 12}).json()
    ids = [m["product_id"] for m in data["matches"]]
    assert ids.index(cheap.id) < ids.index(dear.id)


def test_openapi_docs_are_served_at_mp_docs(session, mp):
    assert mp.client.get("/mp/docs").status_code == 200
    spec = mp.client.get("/mp/openapi.json").json()
    assert "/login" in spec["paths"] and "/applications/{draft_id}/submit" in spec["paths"]


def test_my_loans_are_empty_with_a_note_before_any_loan(session, mp):
    mp.login("alice")
    assert mp.get("/loans").json() == {"loans": [], "contracts": [], "note": None}


def test_answers_are_not_cached_and_the_docs_load_the_mp_spec(session, mp):
    mp.login("alice")
    assert mp.get("/me").headers["cache-control"] == "no-store"
    assert "/mp/openapi.json" in mp.client.get("/mp/docs").text


def test_matching_lists_products_needing_information_and_the_reasons(session, mp):
    free = make_offer(session)
    social = make_offer(session, min_social_insurance_months=12)
    mp.login("alice")
    data = mp.post("/products/match", {"amount": "50000", "term_months": 12}).json()
    assert free.id in [m["product_id"] for m in data["matches"]]
    [pending] = [m for m in data["needs_info"] if m["product_id"] == social.id]
    assert pending["missing"] == ["社保缴纳月数（要求至少 12 个月）"]
