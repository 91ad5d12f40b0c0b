"""Books and stock levels."""
from __future__ import annotations

import dataclasses
import time
from decimal import Decimal


class OutOfStock(Exception):
    """Raised when more copies are reserved than the shelf holds."""


@dataclasses.dataclass(frozen=True)
class Book:
    isbn: str
    title: str
    price: Decimal
    category: str = "general"

    def __post_init__(self):
        digits = self.isbn.replace("-", "")
        if len(digits) != 13 or not digits.isdigit():
            raise ValueError(f"invalid ISBN-13: {self.isbn!r}")
        if self.price < 0:
            raise ValueError("price must not be negative")


def isbn13_checksum_ok(isbn: str) -> bool:
    digits = [int(d) for d in isbn.replace("-", "")]
    total = sum(d * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == digits[12]


class Inventory:
    def __init__(self, latency: float = 0.0):
        self._books: dict[str, Book] = {}
        self._stock: dict[str, int] = {}
        self._latency = latency  # simulates a remote warehouse

    def add(self, book: Book, copies: int = 1) -> None:
        if copies < 0:
            raise ValueError("copies must not be negative")
        self._books[book.isbn] = book
        self._stock[book.isbn] = self._stock.get(book.isbn, 0) + copies

    def book(self, isbn: str) -> Book:
        try:
            return self._books[isbn]
        except KeyError:
            raise KeyError(f"unknown ISBN {isbn}") from None

    def stock(self, isbn: str) -> int:
        time.sleep(self._latency)
        return self._stock.get(isbn, 0)

    def reserve(self, isbn: str, copies: int) -> None:
        available = self.stock(isbn)
        if copies > available:
            raise OutOfStock(f"{isbn}: {copies} requested, {available} available")
        self._stock[isbn] = available - copies

    def release(self, isbn: str, copies: int) -> None:
        self._stock[isbn] = self._stock.get(isbn, 0) + copies

    def search(self, text: str) -> list[Book]:
        needle = text.casefold()
        return sorted((b for b in self._books.values() if needle in b.title.casefold()),
                      key=lambda b: b.title)
