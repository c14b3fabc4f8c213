"""The stores: what whylabel keeps so as not to compute it again, bounded in bytes. On disk: the fast engine's
exports (`engines`) and computed maps and scores (`results`), written atomically under one folder (`disk`) and
keyed on everything that decides them (`environment`); in memory: `memory`.

May import: no room of whylabel (the ground floor: every room may use it). Callers name what decides an entry
(`explainers.kept`, `trust.kept`); the store only hashes, keeps and bounds.
"""
