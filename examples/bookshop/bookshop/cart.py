"""A shopping cart that reserves stock as books are added."""
from __future__ import annotations

from bookshop.inventory import Inventory
from bookshop.pricing import Coupon, price_cart


class CartError(Exception):
    pass


class Cart:
    MAX_COPIES = 10

    def __init__(self, inventory: Inventory):
        self._inventory = inventory
        self._lines: dict[str, int] = {}
        self._coupon: Coupon | None = None
        self.checked_out = False

    def add(self, isbn: str, copies: int = 1) -> None:
        self._check_open()
        if copies < 1:
            raise CartError("copies must be positive")
        if self._lines.get(isbn, 0) + copies > self.MAX_COPIES:
            raise CartError(f"at most {self.MAX_COPIES} copies per title")
        self._inventory.book(isbn)
        self._inventory.reserve(isbn, copies)
        self._lines[isbn] = self._lines.get(isbn, 0) + copies

    def remove(self, isbn: str, copies: int | None = None) -> None:
        self._check_open()
        held = self._lines.get(isbn, 0)
        if held == 0:
            raise CartError(f"{isbn} is not in the cart")
        copies = held if copies is None else min(copies, held)
        self._inventory.release(isbn, copies)
        if held == copies:
            del self._lines[isbn]
        else:
            self._lines[isbn] = held - copies

    def apply(self, coupon: Coupon) -> None:
        self._check_open()
        self._coupon = coupon

    def lines(self):
        return [(self._inventory.book(isbn), n) for isbn, n in sorted(self._lines.items())]

    def __len__(self) -> int:
        return sum(self._lines.values())

    def totals(self):
        return price_cart(self.lines(), self._coupon)

    def checkout(self):
        self._check_open()
        if not self._lines:
            raise CartError("cart is empty")
        totals = self.totals()
        self.checked_out = True
        return totals

    def _check_open(self) -> None:
        if self.checked_out:
            raise CartError("cart is already checked out")
