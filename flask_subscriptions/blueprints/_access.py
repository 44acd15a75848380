"""The access checks, kept under this name for the blueprint modules that import it.

They live in ``flask_subscriptions.access`` (below the services, so a gateway's pages use
them too); import them from there.
"""

from __future__ import annotations

from ..access import current_account, is_owner, owner_required, safe_next

__all__ = ["current_account", "is_owner", "owner_required", "safe_next"]
