"""Tables of the lending domain, one module per area. Importing this package registers them all."""

from lending.models.consent import *  # noqa: F403
from lending.models.contracts import *  # noqa: F403
from lending.models.products import *  # noqa: F403
from lending.models.risk import *  # noqa: F403
from lending.models.servicing import *  # noqa: F403
from lending.models.workflow import *  # noqa: F403
