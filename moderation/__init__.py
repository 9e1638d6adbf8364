"""Content moderation: variant-aware heuristics first, a Qwen model for the ambiguous rest.

Data flows one way: normalize -> detect -> triage -> escalate -> decide. A module imports
only from the layers below it (enforced by import-linter, see pyproject.toml):

=====  ==========================================  ============================================
layer  module                                      owns
=====  ==========================================  ============================================
12     cli                                         the command line: serve, check, batch, ...
11     ray_batch                                   batch reruns on Ray actors (optional extra)
10     compose, train                              composition root; fitting a scorer model
9      rpc, batch, escalation, evaluate            the doors and the model escalator
8      metrics, tracing, streams                   Prometheus; OpenTelemetry; stream scheduling
7      pipeline                                    the transport-free ``Moderator``, log line
6      decide                                      triage and decision from findings + policy
5      policy                                      per-jurisdiction policy files, validated
4      detect, context                             detectors; reporting/quoting/naming contexts
3      lexicon, scorer, intents, broad             lexicon automata; scorer; intents; broad lists
2      normalize, phonetic, llm, datasets,         text folding; pinyin; HTTP; labelled files;
       jsonform                                    the JSON form of an answer
1      domain                                      value types and enums
0      errors, datafile                            our exception tree; reading data files
-      settings, log                               environment (read nowhere else); structlog
-      v1                                          generated wire types (rpc and cli only)
=====  ==========================================  ============================================
"""

__version__ = "0.1.0"
