"""The stores: what whylabel keeps so as not to compute it again, bounded in bytes. On disk: the fast engine's
exports (`engines`) and computed maps and scores (`results`), written atomically under one folder (`disk`) and
keyed on everything that decides them (`environment`); in memory: `memory`, a thread-safe LRU cache bounded
in bytes that computes a missing entry once however many threads ask (the page's results).

May import: no room of whylabel (the ground floor: every room may use it). Callers name what decides an entry
(`explainers.kept`, `trust.kept`); the store only hashes, keeps and bounds.
"""
