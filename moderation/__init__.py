"""Content moderation: variant-aware heuristics first, a Qwen model for the ambiguous rest.

Data flows one way: normalize -> detect -> triage -> escalate -> decide. A module imports
only from the layers below it (enforced by import-linter, see pyproject.toml):

=====  ==========================================  ============================================
layer  module                                      owns
=====  ==========================================  ============================================
10     cli                                         the command line: serve, check, batch, ...
9      ray_batch                                   batch reruns on Ray Data (optional extra)
8      compose                                     composition root: settings -> objects
7      rpc, batch, escalation, evaluate            the doors and the model escalator
6      pipeline                                    the transport-free ``Moderator``, log line
5      decide                                      triage and decision from findings + policy
4      policy                                      per-jurisdiction policy files, validated
3      detect                                      detectors (lexicon views, patterns), quick
2      lexicon                                     lexicon files -> automata, with a version
1      normalize, phonetic, llm                    text folding with offsets; pinyin; HTTP
0      domain, errors                              value types and enums; our exception tree
-      settings, log                               environment (read nowhere else); structlog
-      v1                                          generated wire types (rpc and cli only)
=====  ==========================================  ============================================
"""

__version__ = "0.1.0"
