"""The policy engine (pure: no I/O, no clock reads, no gateway imports).

This package is the seam the policy issue fills: `evaluate(policy, facts, now)
-> Decision`. Until then the gateway runs every valid request unchanged; the
types below are the interface the server will call, so the server side can be
written against them now.
"""

from policies.engine import Decision, Facts, Policy, Rewrite, evaluate

__all__ = ["Decision", "Facts", "Policy", "Rewrite", "evaluate"]
