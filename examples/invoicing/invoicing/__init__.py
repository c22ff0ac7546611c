"""A small service that keeps its own table beside asyncdal's: invoices for orders."""
