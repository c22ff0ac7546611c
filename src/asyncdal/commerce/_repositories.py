"""Commerce: products, and orders placed and cancelled without overselling."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import ConflictError, InvalidQueryError, NotFoundError
from asyncdal._repository.base import Repository
from asyncdal._repository.values import any_of, checker_for, key_column
from asyncdal.accounts import User
from asyncdal.commerce._errors import InsufficientStockError
from asyncdal.commerce._models import Order, OrderItem, OrderStatus, Product

__all__ = ["OrderItems", "OrderRepository", "ProductRepository"]

#: What ``place`` accepts: ``{product_id: quantity}`` or ``[(product_id, quantity), ...]``.
OrderItems = Mapping[int, int] | Iterable[tuple[int, int]]

_USER_ID = checker_for(key_column(User), "user id")
_ORDER_ID = checker_for(key_column(Order), "order id")
#: The most distinct products one order may hold.
MAX_ITEMS = 10_000

#: Orders in these states may be cancelled; a shipped order may not.
_CANCELLABLE = (OrderStatus.PENDING, OrderStatus.PAID)


class ProductRepository(Repository[Product]):
    """Products for sale. Stock changes go through :class:`OrderRepository`."""

    model = Product
    filter_fields = frozenset({"id", "sku", "name", "price", "stock", "created_at"})
    sort_fields = frozenset({"id", "sku", "name", "price", "stock", "created_at"})
    upsert_keys = (("sku",),)


def _quantities(items: OrderItems) -> dict[int, int]:
    """``items`` as ``{product_id: total quantity}``, validated; repeated products add up."""
    pairs = items.items() if isinstance(items, Mapping) else items
    wanted: dict[int, int] = {}
    for pair in pairs:
        try:
            product_id, quantity = pair
        except (TypeError, ValueError):
            raise InvalidQueryError(
                f"order items are (product_id, quantity) pairs, got {pair!r}"
            ) from None
        for name, value in (("product_id", product_id), ("quantity", quantity)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
                raise InvalidQueryError(f"{name} must be a positive integer, got {value!r}")
        wanted[product_id] = wanted.get(product_id, 0) + quantity
    if not wanted:
        raise InvalidQueryError("an order needs at least one item")
    if len(wanted) > MAX_ITEMS:
        raise InvalidQueryError(
            f"an order holds at most {MAX_ITEMS:,} products, got {len(wanted):,}"
        )
    return wanted


class OrderRepository(Repository[Order]):
    """Orders: place them (stock checked and decremented) and cancel them (stock restored).

    Both lock the product rows they touch in ascending id order, so any number of concurrent
    orders and cancellations queue on the rows instead of deadlocking.
    """

    model = Order
    filter_fields = frozenset({"id", "user_id", "status", "total", "created_at"})
    sort_fields = frozenset({"id", "total", "created_at"})

    async def place(self, user_id: int, items: OrderItems) -> Order:
        """Order ``items`` for ``user_id``; returns the order with its ``items`` loaded.

        In the caller's transaction: lock the products (``SELECT ... FOR UPDATE`` in id
        order), check every stock, decrement it, and insert the order and its items at the
        database's current prices. If a product is short, :class:`InsufficientStockError`
        names it and nothing is written; an unknown product is a :class:`NotFoundError`.
        """
        _USER_ID(user_id)
        wanted = _quantities(items)
        stmt = (
            select(Product)
            .where(any_of(key_column(Product), wanted))
            .order_by(Product.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        with wrap_errors():
            products = (await self.session.scalars(stmt)).all()
        found = {product.id: product for product in products}
        for product_id in sorted(wanted):
            if product_id not in found:
                raise NotFoundError("Product", product_id)
            if found[product_id].stock < wanted[product_id]:
                raise InsufficientStockError(
                    product_id, requested=wanted[product_id], available=found[product_id].stock
                )
        total = sum(
            (found[pid].price * quantity for pid, quantity in wanted.items()), Decimal("0.00")
        )
        order = Order(user_id=user_id, status=OrderStatus.PENDING, total=total)
        lines = [
            OrderItem(product_id=pid, quantity=wanted[pid], unit_price=found[pid].price)
            for pid in sorted(wanted)
        ]
        for pid, quantity in wanted.items():
            # The rows are locked by this transaction, so writing the new value loses nothing.
            found[pid].stock -= quantity
        self.session.add(order)
        with wrap_errors():
            await self.session.flush()
            for line in lines:
                line.order_id = order.id
            self.session.add_all(lines)
            await self.session.flush()
        set_committed_value(order, "items", lines)
        return order

    async def cancel(self, order_id: int) -> Order:
        """Cancel an order and put its items back in stock, exactly once.

        Cancelling an already cancelled order is a no-op that returns it unchanged, so a
        retried or concurrent cancel never restores stock twice. A shipped order cannot be
        cancelled (:class:`ConflictError`); an unknown order is a :class:`NotFoundError`.
        """
        _ORDER_ID(order_id)
        # The conditional UPDATE is the gate: of concurrent cancels, exactly one sees the
        # order still cancellable (the others wait on the row lock, then match nothing).
        flip = (
            update(Order)
            .where(Order.id == order_id, Order.status.in_(_CANCELLABLE))
            .values(status=OrderStatus.CANCELLED)
            .returning(Order.id)
        )
        with wrap_errors():
            flipped = (await self.session.execute(flip)).first() is not None
            if flipped:
                lines = select(OrderItem.product_id, OrderItem.quantity).where(
                    OrderItem.order_id == order_id
                )
                restock = dict((await self.session.execute(lines)).all())
                products = await self.session.scalars(
                    select(Product)
                    .where(any_of(key_column(Product), restock))
                    .order_by(Product.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
                for product in products:
                    product.stock += restock[product.id]
                await self.session.flush()
            order = await self.session.scalar(
                select(Order)
                .where(Order.id == order_id)
                .options(selectinload(Order.items))
                .execution_options(populate_existing=True)
            )
        if order is None:
            raise NotFoundError("Order", order_id)
        if not flipped and order.status is not OrderStatus.CANCELLED:
            raise ConflictError(f"order {order_id} is {order.status.value} and cannot be cancelled")
        return order
