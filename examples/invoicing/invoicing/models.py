"""The service's own model, on asyncdal's ``Base`` (its naming convention), referencing orders."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Numeric, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from asyncdal import Base
from asyncdal.commerce import Order

__all__ = ["Invoice"]


class Invoice(Base):
    """One invoice per order; an order with an invoice cannot be deleted."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey(Order.id, ondelete="RESTRICT"), unique=True
    )
    number: Mapped[str] = mapped_column(String(32), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    order: Mapped[Order] = relationship()
