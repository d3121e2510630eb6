"""Links of a paged, sorted table page: the same query string with one parameter changed."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request

#: Parameters that start the table over at its first page when they change.
RESTARTS_PAGING = frozenset({"sort", "order", "per_page"})


class TableLinks:
    """`with_(page=2)`, `sorted_by("size")`: URLs of this page keeping its other parameters
    (filters), so paging and sorting never drop a filter."""

    def __init__(self, request: Request, path: str) -> None:
        self.path = path
        self.params = dict(request.query_params)

    def with_(self, **changes: object) -> str:
        params = dict(self.params)
        if RESTARTS_PAGING & changes.keys():
            params.pop("page", None)
        for name, value in changes.items():
            if value is None or value == "":
                params.pop(name, None)
            else:
                params[name] = str(value)
        return f"{self.path}?{urlencode(params)}" if params else self.path

    def sorted_by(self, column: str, default: str = "id", default_order: str = "asc") -> str:
        """Sort by `column`; the column already sorted by flips its order."""
        current = self.params.get("sort", default)
        order = self.params.get("order", default_order)
        flipped = "desc" if order == "asc" else "asc"
        return self.with_(sort=column, order=flipped if current == column else "asc")

    def arrow(self, column: str, default: str = "id", default_order: str = "asc") -> str:
        """▲ or ▼ after the column the table is sorted by, else nothing."""
        if self.params.get("sort", default) != column:
            return ""
        return " ▼" if self.params.get("order", default_order) == "desc" else " ▲"
