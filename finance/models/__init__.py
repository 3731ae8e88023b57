"""Tables of the finance domain. Importing this package registers them all."""

from finance.models.cases import *  # noqa: F403
from finance.models.ledger import *  # noqa: F403
