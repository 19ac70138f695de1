"""The public, stateful wrappers around trained TRMs, and ``UnifiedConsciousness`` that composes them."""
