"""Tables of the CRM domain, one module per area. Importing this package registers them all."""

from crm.models.customer import *  # noqa: F403
from crm.models.handover import *  # noqa: F403
from crm.models.imports import *  # noqa: F403
from crm.models.notification import *  # noqa: F403
from crm.models.org import *  # noqa: F403
from crm.models.pool import *  # noqa: F403
from crm.models.profile import *  # noqa: F403
from crm.models.tags import *  # noqa: F403
from crm.models.work import *  # noqa: F403
