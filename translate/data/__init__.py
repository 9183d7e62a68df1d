"""Data pipeline: corpus -> filters -> SentencePiece -> encoded datasets -> token-budget batches.

Import the submodules directly (translate.data.vocab, .tokenizer, .batching, .pipeline): this package
imports nothing itself, so `from translate.data.vocab import PAD_ID` stays cheap for the models.
"""
