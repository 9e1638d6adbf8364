"""Content moderation: variant-aware heuristics first, a Qwen model for the ambiguous rest.

Data flows one way: normalize -> detect -> triage -> escalate -> decide. A module imports
only from the layers below it (enforced by import-linter, see pyproject.toml):

=====  ==================  ==========================================================
layer  module              owns
=====  ==================  ==========================================================
8      cli                 composition root: settings -> objects; serve, check, policies
7      rpc                 proto <-> domain conversion, servicer, interceptors, server
6      pipeline            the transport-free ``Moderator`` and its canonical log line
5      decide              pure decision from findings and a policy
4      policy              per-jurisdiction policy files, validated at load
3      detect              detectors: lexicon and pattern hits -> ``Finding``
2      lexicon             lexicon files -> compiled automata, with a version
1      normalize           offset-preserving text normalization
0      domain, errors      value types and enums; our exception tree
-      settings, log       environment (read nowhere else) and structlog setup
-      v1                  generated wire types, seen only by rpc and cli
=====  ==================  ==========================================================
"""

__version__ = "0.1.0"
