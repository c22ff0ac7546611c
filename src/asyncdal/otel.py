"""OpenTelemetry traces and metrics for a :class:`Database` (the optional extra ``[otel]``).

``pip install 'asyncdal[otel]'``, then, once at start-up::

    from asyncdal import Database
    from asyncdal.otel import instrument

    db = Database.from_env()
    instrument(db)  # the global tracer and meter providers, or pass your own

What you get:

- **statement spans** (``SELECT app``, ``INSERT app``... one ``CLIENT`` span per statement,
  with the SQL text and its ``$n`` placeholders but never the values), from the layer's own
  listeners on this database's engines only (no global patching);
- **the layer's spans**, which no instrumentation can see: ``asyncdal.gather`` for each
  ``db.gather`` call with one ``asyncdal.gather.read`` child per read (its queue wait and run
  time as attributes), and ``asyncdal.transaction`` for each ``db.transaction`` with every
  retry as a ``retry`` event and the number of attempts;
- **metrics** mirroring :meth:`Database.stats`, read when the exporter collects (nothing is
  recorded on the query path): the pool's connections by state, waiters and timeouts (the
  ``db.client.connection.*`` names of the semantic conventions), and ``asyncdal.*`` counters
  for waits, ``gather`` reads, transactions, retries and errors by class.

Span attributes follow the OpenTelemetry database conventions (``db.system``,
``db.system.name``, ``db.namespace``, ``server.address``, ``server.port``); the layer's own use
the ``asyncdal.`` prefix (listed in ``Instrumentation.ATTRIBUTES``, the metrics in
``Instrumentation.METRICS``). No attribute, event or status carries a
bound parameter, a password or an error message (messages may quote values): a failed span has
status ERROR and ``error.type``, the class name of the layer's error (``DuplicateError``), plus
``db.response.status_code``, the SQLSTATE, on a statement span. This module is the only one that
imports OpenTelemetry, and only when it is imported; a database that is not instrumented pays
one ``is None`` test per ``gather``/``transaction`` call.
"""

from asyncdal._otel import Instrumentation, instrument

__all__ = ["Instrumentation", "instrument"]
