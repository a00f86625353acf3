"""Fixtures shared with the trading tests."""

# The listing venue (trading over gRPC, its activities, the ListingWorkflow, time skipping).
from tests.integration.trading.listing_venue import venue  # noqa: F401
