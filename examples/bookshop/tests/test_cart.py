import time
from decimal import Decimal

import pytest

from bookshop import Cart, CartError, Coupon, OutOfStock
from conftest import DUNE, EMMA, GRUFFALO, SICP


def test_new_cart_is_empty(cart):
    assert len(cart) == 0
    assert cart.lines() == []


def test_add_reserves_stock(cart, inventory):
    cart.add(DUNE.isbn, 2)
    assert len(cart) == 2
    assert inventory.stock(DUNE.isbn) == 3


def test_add_same_title_twice(cart):
    cart.add(EMMA.isbn)
    cart.add(EMMA.isbn, 2)
    assert cart.lines() == [(EMMA, 3)]


@pytest.mark.parametrize("copies", [0, -1])
def test_add_non_positive(cart, copies):
    with pytest.raises(CartError, match="positive"):
        cart.add(DUNE.isbn, copies)


def test_add_more_than_stock(cart):
    with pytest.raises(OutOfStock):
        cart.add(SICP.isbn, 6)
    assert len(cart) == 0


def test_copies_limit(inventory):
    inventory.add(GRUFFALO, 20)
    cart = Cart(inventory)
    cart.add(GRUFFALO.isbn, 10)
    with pytest.raises(CartError, match="at most 10"):
        cart.add(GRUFFALO.isbn)


def test_remove_some_and_all(cart, inventory):
    cart.add(DUNE.isbn, 3)
    cart.remove(DUNE.isbn, 1)
    assert len(cart) == 2
    cart.remove(DUNE.isbn)
    assert len(cart) == 0
    assert inventory.stock(DUNE.isbn) == 5


def test_remove_missing(cart):
    with pytest.raises(CartError, match="not in the cart"):
        cart.remove(SICP.isbn)


class TestCheckout:
    def test_checkout_totals(self, cart):
        cart.add(SICP.isbn)
        cart.apply(Coupon("TEN", percent=10))
        totals = cart.checkout()
        assert totals["total"] == Decimal("52.97")  # 49.50 + 7 % VAT, rounded half up
        assert cart.checked_out

    def test_empty_cart_cannot_check_out(self, cart):
        with pytest.raises(CartError, match="empty"):
            cart.checkout()

    def test_closed_after_checkout(self, cart):
        cart.add(EMMA.isbn)
        cart.checkout()
        with pytest.raises(CartError, match="already checked out"):
            cart.add(DUNE.isbn)

    @pytest.mark.xfail(reason="refunds after checkout are a known gap")
    def test_refund_after_checkout(self, cart):
        cart.add(EMMA.isbn)
        cart.checkout()
        cart.remove(EMMA.isbn)


@pytest.mark.slow
@pytest.mark.parametrize("n", range(6))
def test_concurrent_shoppers_simulation(warehouse, n):
    # Each simulated shopper browses a little before buying.
    time.sleep(0.1)
    cart = Cart(warehouse)
    cart.add([DUNE, SICP, EMMA][n % 3].isbn)
    assert len(cart) == 1


@pytest.mark.slow
def test_full_store_walkthrough(warehouse):
    cart = Cart(warehouse)
    for book in (DUNE, GRUFFALO, SICP, EMMA):
        cart.add(book.isbn, 2)
    time.sleep(0.3)
    totals = cart.checkout()
    assert totals["total"] > totals["subtotal"]
