"""What a ticket would save in deployment: a table built from the store's per-layer counts, and the
words around it (the counts are not a measured speed-up, and the page says so beside them)."""
from __future__ import annotations

from lth_core.analysis.deployment import Savings, savings_table, ticket_savings  # noqa: F401  (the pages' import)


# Shown next to the numbers, not folded away: "fewer multiply-adds" is easily read as "faster".
CAVEAT = ("Counted, not measured: these are what a sparse format and sparse kernels *could* save. Ordinary dense "
          "kernels multiply the zeros too, so on them the ticket runs no faster; no speed-up has been measured here.")


def savings_sentence(s: Savings, round: int) -> str:
    """One sentence with the headline numbers of the round's ticket (Markdown)."""
    return (f"The round-{round} ticket keeps **{s.weights_remaining:,} of {s.weights_total:,}** prunable weights: "
            f"**{s.compression:.1f}× smaller** to store and **{s.mac_reduction:.1f}× fewer** multiply-adds per "
            "example, counted from its mask.")

