"""Limits on what an envelope may carry, shared by the decode stage that enforces them and
the vendor's publisher that refuses, before sending, what the workers would refuse."""

from __future__ import annotations

MAX_CHAIN_LENGTH = 8  # certificates in one envelope's chain: a leaf, its CAs, maybe the root
# One certificate's DER. CAs here issue 1-2 KB certificates; a sender's 0.9 MB one with
# thousands of name attributes took ~0.7 s of a core to parse and name.
MAX_CERTIFICATE_BYTES = 16_384
