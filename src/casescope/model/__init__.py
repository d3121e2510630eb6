"""ORM tables, enums, engine/session setup and migrations of the metadata DB."""

# The web tables must be in `Base.metadata` whenever any table is (additive: web app, issue 5).
from casescope.model import migration as _migration  # noqa: F401
from casescope.model import operations as _operations  # noqa: F401  (jobs.operation_id)
from casescope.model import story as _story  # noqa: F401
from casescope.model import users as _users  # noqa: F401
