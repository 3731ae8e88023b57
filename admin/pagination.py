"""Page numbers and the links between pages, for every list in the console."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

PAGE_SIZE = 20


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int | None  # None when the query does not count (the next page is then probed)
    has_next: bool
    base_url: str
    params: tuple[tuple[str, str], ...]

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.size))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    def url(self, number: int) -> str:
        query = [(k, v) for k, v in self.params if v and k != "page"] + [("page", str(number))]
        return f"{self.base_url}?{urlencode(query)}"


def page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


def counted(number: int, total: int, base_url: str, params: dict[str, str], size: int = PAGE_SIZE) -> Page:
    return Page(number, size, total, number * size < total, base_url, tuple(params.items()))


def probed(number: int, fetched: int, base_url: str, params: dict[str, str], size: int = PAGE_SIZE) -> Page:
    """For queries fetched with ``limit=size + 1``: one extra row means there is a next page."""
    return Page(number, size, None, fetched > size, base_url, tuple(params.items()))
