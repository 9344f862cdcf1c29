"""What the parent makes once, before any worker starts, so that N workers
never race to create it, and what it checks once, so that a problem is one
set of `error:` lines instead of one per worker.

- the policy file loads (a worker would fail on it N times over);
- the signer loads, and the development signing chain under
  `data_dir/provenance` exists (made here when no key is configured);
- the ledger's migrations are applied (SQLite: the file is created in WAL
  mode here; PostgreSQL: the tables), by opening the ledger and closing it.

Each step is the one `gateway.server.start_gateway` takes, run here first;
the workers then only find what exists.
"""

from __future__ import annotations

from gateway.ledger import open_ledger
from gateway.policy_store import PolicyStore
from gateway.provenance.marker import Marker
from gateway.registry.catalog import price_table
from gateway.settings import Settings

__all__ = ["prepare_shared"]


async def prepare_shared(settings: Settings) -> None:
    """Check and create, in this process, what every worker will open."""
    PolicyStore(settings.policy_file, price_table(settings.registry()))
    Marker.from_settings(settings.provenance, settings.data_dir).close()
    ledger = open_ledger(settings.ledger_location())
    await ledger.start()
    await ledger.close()
