"""The service's repository: asyncdal's generic ``Repository`` on the service's own model."""

from __future__ import annotations

from asyncdal import Repository
from invoicing.models import Invoice

__all__ = ["InvoiceRepository"]


class InvoiceRepository(Repository[Invoice]):
    """Invoices: the same verbs as asyncdal's own repositories (create, get, list, ...)."""

    model = Invoice
    filter_fields = frozenset({"id", "order_id", "number", "amount", "issued_at"})
    sort_fields = frozenset({"id", "issued_at", "amount"})
