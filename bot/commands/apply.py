"""进件 <客户> [产品]: start a loan application.

The lending workflow (applications) is not built yet, so there is nothing to hand the customer to:
the command checks the customer is within reach and answers honestly that online application is
not available yet. When ``lending`` offers an application hand-off, call it here.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.commands import replies, resolve
from bot.commands.parser import Command, CommandInvalid, split_target
from crm.scope import Viewer

USAGE = "格式：进件 <客户> [产品]，例如：进件 张三 信用贷"


def run(session: Session, viewer: Viewer, command: Command) -> str:
    ref, _product = split_target(command.rest)
    if not ref:
        raise CommandInvalid(USAGE)
    customer = resolve.one(session, viewer, ref, example="进件 {ref}", include_pool=False)
    return replies.APPLY_UNAVAILABLE.format(name=f"#{customer.id}")
