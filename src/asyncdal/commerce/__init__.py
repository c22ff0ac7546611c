"""Commerce: products, orders and their items (seed 000's tables), their reads and overview.

Example::

    from asyncdal.commerce import OrderRepository, StorefrontOverview

    order = await db.transaction(lambda s: OrderRepository(s).place(user_id, {product_id: 2}))
    overview = await StorefrontOverview.load(db, limit=20)
"""

from asyncdal.commerce._errors import InsufficientStockError
from asyncdal.commerce._models import Order, OrderItem, OrderStatus, Product
from asyncdal.commerce._queries import StorefrontQueries, order_columns
from asyncdal.commerce._repositories import OrderItems, OrderRepository, ProductRepository
from asyncdal.commerce._results import OrderSummary, ProductSummary
from asyncdal.commerce._views import StorefrontOverview

__all__ = [
    "InsufficientStockError",
    "Order",
    "OrderItem",
    "OrderItems",
    "OrderRepository",
    "OrderStatus",
    "OrderSummary",
    "Product",
    "ProductRepository",
    "ProductSummary",
    "StorefrontOverview",
    "StorefrontQueries",
    "order_columns",
]
