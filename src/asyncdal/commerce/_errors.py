"""The commerce domain's own error (the layer's tree is in :mod:`asyncdal`)."""

from __future__ import annotations

from asyncdal import ConflictError

__all__ = ["InsufficientStockError"]


class InsufficientStockError(ConflictError):
    """An order asked for more units of a product than are in stock.

    Nothing of the order is written when this is raised. A :class:`~asyncdal.ConflictError`,
    so ``asyncdal.fastapi`` answers it with 409, ``"error": "insufficient_stock"`` and the
    three attributes below.

    Attributes:
        product_id: the product that is short.
        requested: the quantity the order asked for.
        available: the stock when the order was checked.
    """

    code = "insufficient_stock"

    def __init__(self, product_id: int, *, requested: int, available: int) -> None:
        self.product_id = product_id
        self.requested = requested
        self.available = available
        super().__init__(
            f"insufficient stock for product {product_id}: "
            f"requested {requested}, available {available}",
            constraint=None,
        )

    @property
    def public_fields(self) -> dict[str, object]:
        """The short product, what was asked and what there was."""
        return {
            "product_id": self.product_id,
            "requested": self.requested,
            "available": self.available,
        }
