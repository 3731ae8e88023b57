"""Page numbers and the links between pages, for every list in the console."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

PAGE_SIZE = 20
# Page numbers beyond this are clamped (console) or refused with 422 (API, ``le=MAX_PAGE``): an
# arbitrarily large page makes an OFFSET no database integer holds (OverflowError, a 500).
MAX_PAGE = 100_000
MAX_OFFSET = MAX_PAGE * 100


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int | None  # None when the query does not count (the next page is then probed)
    has_next: bool
    base_url: str
    params: tuple[tuple[str, str], ...]
    more_than: int | None = None  # the count stopped at this bound: "1万+" (crm.customer_queries.search)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int | None:
        if self.total is None or self.more_than is not None:
            return None
        return max(1, -(-self.total // self.size))

    @property
    def total_text(self) -> str | None:
        """The count as the pager shows it: exact, or "1万+" past the bound."""
        if self.more_than is not None:
            return count_text(self.total or 0, self.more_than)
        return None if self.total is None else str(self.total)

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    def url(self, number: int) -> str:
        query = [(k, v) for k, v in self.params if v and k != "page"] + [("page", str(number))]
        return f"{self.base_url}?{urlencode(query)}"


def page_number(raw: str | None) -> int:
    """A console page number from the query string: junk is page 1, too large is the last page allowed."""
    try:
        return min(MAX_PAGE, max(1, int(str(raw or 1).strip()[:12])))
    except ValueError:
        return 1


def count_text(total: int, more_than: int | None = None) -> str:
    """A count in Chinese: exact, or past a bound "1万+" (a multiple of 10,000) / "5,000+"."""
    if more_than is None:
        return str(total)
    if more_than and more_than % 10_000 == 0:
        return f"{more_than // 10_000}万+"
    return f"{more_than:,}+"


def counted(number: int, total: int, base_url: str, params: dict[str, str], size: int = PAGE_SIZE,
            more_than: int | None = None) -> Page:
    """``total`` counted (exactly, or with ``more_than`` up to a bound and at least one row past this page, so
    that the next-page link is right either way)."""
    return Page(number, size, total, number * size < total, base_url, tuple(params.items()), more_than)


def probed(number: int, fetched: int, base_url: str, params: dict[str, str], size: int = PAGE_SIZE) -> Page:
    """For queries fetched with ``limit=size + 1``: one extra row means there is a next page."""
    return Page(number, size, None, fetched > size, base_url, tuple(params.items()))
