from decimal import Decimal

import pytest

from bookshop import Book, Cart, Inventory

DUNE = Book("978-0-441-17271-9", "Dune", Decimal("9.99"), "classics")
GRUFFALO = Book("978-0-333-71093-7", "The Gruffalo", Decimal("7.50"), "children")
SICP = Book("978-0-262-51087-5", "Structure and Interpretation of Computer Programs", Decimal("55.00"))
EMMA = Book("978-0-141-43958-7", "Emma", Decimal("4.20"), "classics")


@pytest.fixture(scope="session")
def catalogue():
    return [DUNE, GRUFFALO, SICP, EMMA]


@pytest.fixture
def inventory(catalogue):
    inv = Inventory()
    for book in catalogue:
        inv.add(book, copies=5)
    return inv


@pytest.fixture
def warehouse(catalogue):
    """An inventory behind a slow link: every stock lookup takes 50 ms."""
    inv = Inventory(latency=0.05)
    for book in catalogue:
        inv.add(book, copies=3)
    return inv


@pytest.fixture
def cart(inventory):
    return Cart(inventory)
