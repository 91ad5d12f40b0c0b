"""A tiny bookshop: an inventory of books, pricing rules and a shopping cart."""
from bookshop.cart import Cart, CartError
from bookshop.inventory import Book, Inventory, OutOfStock
from bookshop.pricing import Coupon, price_cart

__all__ = ["Book", "Cart", "CartError", "Coupon", "Inventory", "OutOfStock", "price_cart"]
