"""Mounts the console (/console) and the staff JSON API (/api/v1)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from admin import agency_portal, api, console
from admin.api import automation as automation_api
from admin.api import collections as collections_api
from admin.api import collections_setup as collections_setup_api
from admin.api import customer_profile as customer_profile_api
from admin.api import customers as customers_api
from admin.api import finance as finance_api
from admin.api import handover as handover_api
from admin.api import imports as imports_api
from admin.api import lending_applications as lending_applications_api
from admin.api import lending_loans as lending_loans_api
from admin.api import lending_products as lending_products_api
from admin.api import pool as pool_api
from admin.api import pool_setup as pool_setup_api
from admin.api import referral as referral_api
from admin.api import segments as segments_api
from admin.api import tags as tags_api
from admin.api import telephony as telephony_api
from admin.api import work as work_api
from admin.console import agencies as agencies_console
from admin.console import channel_costs as channel_costs_console
from admin.console import collections_analysis as collections_analysis_console
from admin.console import collections_cases as collections_cases_console
from admin.console import collections_setup as collections_setup_console
from admin.console import company as company_console
from admin.console import custom_fields as custom_fields_console
from admin.console import customer_profile as customer_profile_console
from admin.console import customers as customers_console
from admin.console import exports as exports_console
from admin.console import finance_cases as finance_cases_console
from admin.console import finance_reports as finance_reports_console
from admin.console import finance_settlements as finance_settlements_console
from admin.console import handover as handover_console
from admin.console import imports as imports_console
from admin.console import lending_applications as lending_applications_console
from admin.console import lending_bills as lending_bills_console
from admin.console import lending_book_import as lending_book_import_console
from admin.console import lending_loans as lending_loans_console
from admin.console import lending_products as lending_products_console
from admin.console import lending_risk as lending_risk_console
from admin.console import lending_workflow as lending_workflow_console
from admin.console import payments as payments_console
from admin.console import pool as pool_console
from admin.console import referral_money as referral_money_console
from admin.console import referral_setup as referral_setup_console
from admin.console import reports as reports_console
from admin.console import roles as roles_console
from admin.console import segments as segments_console
from admin.console import tags as tags_console
from admin.console import telephony as telephony_console
from admin.console import work as work_console
from admin.deps import compile_templates, has_staff_session
from admin.errors import API_FIELD_LABELS, render_api_error, render_console_error, render_not_found
from core import api_docs


def mount(app: FastAPI) -> None:
    api_docs.set_staff_check(has_staff_session)  # production: /api/docs and /mp/docs for logged-in staff only
    app.mount("/console/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console-static")
    app.include_router(console.router)
    app.include_router(api.router)
    app.include_router(customers_console.router)
    app.include_router(customers_api.router)
    app.include_router(customer_profile_api.router)
    app.include_router(customer_profile_console.router)
    app.include_router(custom_fields_console.router)
    app.include_router(roles_console.router)
    app.include_router(company_console.router)
    app.include_router(handover_console.router)
    app.include_router(handover_api.router)
    app.include_router(work_console.router)
    app.include_router(work_api.router)
    app.include_router(automation_api.router)
    app.include_router(pool_console.router)
    app.include_router(pool_api.router)
    app.include_router(pool_setup_api.router)
    app.include_router(imports_console.router)
    app.include_router(imports_api.router)
    app.include_router(tags_console.router)
    app.include_router(tags_api.router)
    app.include_router(segments_console.router)
    app.include_router(segments_api.router)
    app.include_router(referral_setup_console.router)
    app.include_router(referral_money_console.router)
    app.include_router(referral_api.router)
    app.include_router(lending_products_console.router)
    app.include_router(lending_risk_console.router)
    app.include_router(lending_products_api.router)
    app.include_router(lending_applications_console.router)
    app.include_router(lending_workflow_console.router)
    app.include_router(lending_applications_api.router)
    app.include_router(lending_book_import_console.router)
    app.include_router(lending_loans_console.router)
    app.include_router(lending_bills_console.router)
    app.include_router(exports_console.router)
    app.include_router(reports_console.router)
    app.include_router(channel_costs_console.router)
    app.include_router(lending_loans_api.router)
    app.include_router(collections_cases_console.router)
    app.include_router(collections_setup_console.router)
    app.include_router(telephony_console.router)
    app.include_router(telephony_api.router)
    app.include_router(telephony_api.legacy)
    app.include_router(agencies_console.router)
    app.include_router(agency_portal.router)  # the agency portal (/agency): agency accounts, not staff
    app.include_router(collections_analysis_console.router)
    app.include_router(collections_api.router)
    app.include_router(collections_setup_api.router)
    app.include_router(payments_console.router)
    app.include_router(finance_api.router)
    app.include_router(finance_settlements_console.router)
    app.include_router(finance_cases_console.router)
    app.include_router(finance_reports_console.router)
    app.state.error_renderers["/console"] = render_console_error
    app.state.error_renderers["/api/v1/"] = render_api_error
    app.state.validation_labels["/api/v1/"] = API_FIELD_LABELS
    app.add_exception_handler(StarletteHTTPException, render_not_found)  # the console's own 404 page
    app.state.warm_ups.append(compile_templates)
