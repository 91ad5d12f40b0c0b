"""Prices: category discounts, coupons, VAT, rounding to cents."""
from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal

VAT_RATE = Decimal("0.07")  # reduced rate for books
CATEGORY_DISCOUNT = {"children": Decimal("0.10"), "classics": Decimal("0.05")}
CENT = Decimal("0.01")


@dataclasses.dataclass(frozen=True)
class Coupon:
    code: str
    percent: int = 0
    amount: Decimal = Decimal("0")
    minimum: Decimal = Decimal("0")

    def __post_init__(self):
        if not 0 <= self.percent <= 100:
            raise ValueError("percent must be within 0..100")


def round_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_price(unit_price: Decimal, quantity: int, category: str = "general") -> Decimal:
    discount = CATEGORY_DISCOUNT.get(category, Decimal("0"))
    return round_cents(unit_price * quantity * (1 - discount))


def apply_coupon(subtotal: Decimal, coupon: Coupon | None) -> Decimal:
    if coupon is None or subtotal < coupon.minimum:
        return subtotal
    reduced = subtotal * (100 - coupon.percent) / 100 - coupon.amount
    return max(round_cents(reduced), Decimal("0.00"))


def price_cart(lines, coupon: Coupon | None = None) -> dict[str, Decimal]:
    """lines: iterable of (Book, quantity). Returns subtotal, discount, vat and total."""
    subtotal = sum((line_price(b.price, q, b.category) for b, q in lines), Decimal("0.00"))
    after_coupon = apply_coupon(subtotal, coupon)
    vat = round_cents(after_coupon * VAT_RATE)
    return {"subtotal": subtotal, "discount": subtotal - after_coupon, "vat": vat,
            "total": after_coupon + vat}
